"""deploy/: the cluster-launcher YAMLs pass Ray's own schema validation, the KubeRay
and MLflow manifests are complete and consistent, the Dockerfile passes a structural
lint, and every image named anywhere follows the Dockerfile's tag scheme."""

from __future__ import annotations

import re
import shlex
from importlib import metadata
from pathlib import Path

import pytest
import yaml

import raynas.config as cfg

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
CLUSTER_FILES = sorted((DEPLOY / "cluster").glob("*.yaml"))
K8S = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
# The installed project's metadata (pyproject.toml, as built by the editable install).
META = metadata.metadata("raynas")
VERSION = META["Version"]
EXTRAS = set(META.get_all("Provides-Extra"))
SCRIPTS = {e.name for e in metadata.entry_points(group="console_scripts") if e.value.startswith("raynas.")}
# <registry>/raynas:<raynas version>-py<XY>-<cpu|gpu>, as deploy/docker/build.sh tags.
IMAGE = re.compile(r"^(?P<registry>[\w.-]+(?::\d+)?(?:/[\w.-]+)*)/raynas:"
                   r"(?P<version>\d+\.\d+\.\d+)-(?P<python>py3\d+)-(?P<variant>cpu|gpu)$")


# ---------------------------------------------------------------- Dockerfile


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, f"{path}: the last instruction ends in a line continuation"
    return instructions


def dockerfile_args(instructions) -> dict[str, str]:
    """ARG defaults (the first definition of each name)."""
    args = {}
    for keyword, value in instructions:
        if keyword == "ARG" and "=" in value:
            name, _, default = value.partition("=")
            args.setdefault(name, default)
    return args


@pytest.fixture(scope="module")
def docker():
    instructions = dockerfile_instructions(DOCKERFILE)
    return instructions, dockerfile_args(instructions)


def test_dockerfile_base_image_follows_rays_convention(docker):
    instructions, args = docker
    froms = [value for keyword, value in instructions if keyword == "FROM"]
    assert froms == ["rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-${VARIANT}"]
    # ARGs used by FROM come before it; the version is pinned, never "latest".
    first_from = next(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    before = {v.partition("=")[0] for k, v in instructions[:first_from] if k == "ARG"}
    assert {"RAY_VERSION", "PYTHON_TAG", "VARIANT"} <= before
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["RAY_VERSION"])
    assert args["VARIANT"] == "gpu" and re.fullmatch(r"py3\d+", args["PYTHON_TAG"])
    assert "latest" not in DOCKERFILE.read_text().replace("latest_dlami", "")
    # The pinned Ray satisfies the project's own requirement.
    minimum = next(d for d in META.get_all("Requires-Dist") if d.startswith("ray[")
                   and "extra ==" not in d)
    low = tuple(int(x) for x in re.search(r">=([\d.]+)", minimum).group(1).split("."))
    assert tuple(int(x) for x in args["RAY_VERSION"].split(".")) >= low


def test_dockerfile_runs_as_a_non_root_user(docker):
    instructions, _ = docker
    users = [value for keyword, value in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must end as a non-root user"
    # Files copied in belong to that user.
    for keyword, value in instructions:
        if keyword == "COPY":
            assert value.startswith(f"--chown={users[-1]}:"), value


def test_dockerfile_installs_torch_before_the_project_and_keeps_rays_version(docker):
    instructions, args = docker
    runs = [(i, value) for i, (keyword, value) in enumerate(instructions) if keyword == "RUN"]
    torch_run = next(i for i, value in runs if "torch==${TORCH_VERSION}" in value)
    project_run = next(i for i, value in runs if re.search(r"pip install \"\.\[", value))
    first_copy = next(i for i, (k, _) in enumerate(instructions) if k == "COPY")
    assert torch_run < first_copy < project_run
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["TORCH_VERSION"])
    cpu_branch = instructions[torch_run][1]
    assert "download.pytorch.org/whl/cpu" in cpu_branch and '"$VARIANT" = "cpu"' in cpu_branch
    project = instructions[project_run][1]
    assert "ray[default,tune,rllib]==${RAY_VERSION}" in project
    extras = re.search(r"\.\[([\w,]+)\]", project).group(1).split(",")
    assert set(extras) <= EXTRAS, extras
    # No pip cache in the image.
    envs = " ".join(v for k, v in instructions if k == "ENV")
    assert "PIP_NO_CACHE_DIR=1" in envs


def test_dockerfile_copies_only_what_exists_and_what_the_context_sends(docker):
    instructions, _ = docker
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split()
    sent = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert ignore[ignore.index("**") if "**" in ignore else 0] == "**", "the context starts empty"
    for keyword, value in instructions:
        if keyword != "COPY":
            continue
        sources = shlex.split(value)[1:-1]  # drop --chown=... and the destination
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert source in sent, f"COPY {source}: excluded by Dockerfile.dockerignore"


def test_dockerfile_entrypoint_runs_raynas(docker):
    instructions, _ = docker
    cmd = [value for keyword, value in instructions if keyword == "CMD"]
    assert len(cmd) == 1 and cmd[0].startswith("["), "CMD in exec form"
    argv = yaml.safe_load(cmd[0])
    assert argv[0] in SCRIPTS and argv[1] == "search"
    assert any(k == "HEALTHCHECK" for k, _ in instructions)
    exposed = next(v for k, v in instructions if k == "EXPOSE").split()
    assert {"6379", "8265", "10001"} <= set(exposed)


def test_build_script_tags_both_variants_by_the_scheme():
    script = (DEPLOY / "docker" / "build.sh").read_text()
    assert 'for VARIANT in gpu cpu' in script
    assert '-t "$REGISTRY/raynas:$VERSION-py311-$VARIANT"' in script
    assert "-f deploy/docker/Dockerfile" in script
    assert dockerfile_args(dockerfile_instructions(DOCKERFILE))["PYTHON_TAG"] == "py311"


# ---------------------------------------------------------------- images everywhere


def _images(node) -> list[str]:
    """Every value of an ``image`` / ``head_image`` / ``worker_image`` key, recursively."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("image", "head_image", "worker_image") and isinstance(value, str):
                found.append(value)
            else:
                found += _images(value)
    elif isinstance(node, list):
        for item in node:
            found += _images(item)
    return found


def _k8s_documents() -> dict[str, list[dict]]:
    return {path.name: [d for d in yaml.safe_load_all(path.read_text()) if d]
            for path in sorted(K8S.glob("*.yaml"))}


def test_every_raynas_image_follows_the_tag_scheme(docker):
    _, args = docker
    images = []
    for path in CLUSTER_FILES:
        images += _images(yaml.safe_load(path.read_text()))
    for docs in _k8s_documents().values():
        images += _images(docs)
    raynas_images = [i for i in images if "/raynas:" in i]
    assert len(raynas_images) >= 10
    for image in raynas_images:
        match = IMAGE.match(image)
        assert match, f"{image}: not <registry>/raynas:<version>-py3XY-<cpu|gpu>"
        assert match["version"] == VERSION, f"{image}: raynas is {VERSION}"
        assert match["python"] == args["PYTHON_TAG"]
    others = set(images) - set(raynas_images)
    assert others == {"postgres:16.6"}, others  # pinned, never :latest


# ---------------------------------------------------------------- cluster launcher


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_cluster_yaml_passes_rays_schema_validation(path):
    """What `ray up` does before it touches a cloud: fill defaults, then validate
    against Ray's ray-schema.json and its own consistency rules."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load(path.read_text())
    prepared = prepare_config(raw)
    validate_config(prepared)
    assert prepared["head_node_type"] in prepared["available_node_types"]
    commands = " ".join(prepared["setup_commands"] + prepared["head_start_ray_commands"])
    assert "raynas[cluster]" in commands and "ray start --head" in commands


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_cloud_clusters_have_a_cpu_head_and_autoscaling_gpu_workers(name):
    from ray.autoscaler._private.util import prepare_config

    config = prepare_config(yaml.safe_load((DEPLOY / "cluster" / name).read_text()))
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("CPU") == 0 and not head["resources"].get("GPU")
    workers = [t for n, t in types.items() if n != config["head_node_type"]]
    gpu = [t for t in workers if t["resources"].get("GPU", 0) >= 1]
    assert gpu, "a GPU worker type"
    for node_type in gpu:
        assert node_type["min_workers"] < node_type["max_workers"] <= config["max_workers"]
    assert config["docker"]["image"].endswith("-gpu")
    assert config["docker"]["head_image"].endswith("-cpu")


def test_a_broken_cluster_yaml_is_rejected_by_the_same_validation():
    """The validation is not a formality: a misspelt key fails it."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((DEPLOY / "cluster" / "aws.yaml").read_text())
    raw["available_node_types"]["gpu_worker"]["min_worker"] = 1
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        validate_config(prepare_config(raw))


# ---------------------------------------------------------------- Kubernetes


@pytest.fixture(scope="module")
def manifests():
    docs = _k8s_documents()
    by_kind: dict[str, list[dict]] = {}
    for file_docs in docs.values():
        for doc in file_docs:
            for key in ("apiVersion", "kind", "metadata"):
                assert key in doc, f"a manifest without {key}: {doc}"
            assert doc["metadata"].get("name")
            by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def _named(manifests, kind: str, name: str) -> dict:
    found = [d for d in manifests.get(kind, []) if d["metadata"]["name"] == name]
    assert found, f"no {kind} named {name!r}"
    return found[0]


def _pod_specs(manifests):
    """(owner, pod spec) of every pod template: Ray head and workers, Deployments."""
    for doc in manifests["RayCluster"] + manifests["RayJob"]:
        spec = doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]
        yield f"{doc['metadata']['name']}/head", spec["headGroupSpec"]["template"]["spec"]
        for group in spec["workerGroupSpecs"]:
            yield f"{doc['metadata']['name']}/{group['groupName']}", group["template"]["spec"]
    for doc in manifests["Deployment"]:
        yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def test_manifest_kinds_and_api_versions(manifests):
    assert {d["apiVersion"] for d in manifests["RayCluster"] + manifests["RayJob"]} == {"ray.io/v1"}
    assert {d["apiVersion"] for d in manifests["Deployment"]} == {"apps/v1"}
    for kind in ("ConfigMap", "Secret", "Service", "PersistentVolumeClaim"):
        assert {d["apiVersion"] for d in manifests[kind]} == {"v1"}, kind


def test_ray_clusters_match_the_image_and_have_gpu_worker_groups(manifests, docker):
    _, args = docker
    for doc in manifests["RayCluster"] + manifests["RayJob"]:
        spec = doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]
        assert spec["rayVersion"] == args["RAY_VERSION"], "rayVersion must match the image's Ray"
        head = spec["headGroupSpec"]
        assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
        ports = {p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]}
        assert {6379, 8265, 10001} <= ports
        gpu_groups = []
        for group in spec["workerGroupSpecs"]:
            assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]
            container = group["template"]["spec"]["containers"][0]
            if "nvidia.com/gpu" in container["resources"]["limits"]:
                gpu_groups.append(group)
                assert container["image"].endswith("-gpu")
                assert container["resources"]["requests"]["nvidia.com/gpu"] == \
                    container["resources"]["limits"]["nvidia.com/gpu"]
        assert gpu_groups, f"{doc['metadata']['name']}: no GPU worker group"


def test_every_container_has_limits_and_runs_as_non_root(manifests):
    for owner, pod in _pod_specs(manifests):
        for container in pod["containers"]:
            resources = container.get("resources", {})
            for key in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(key, {})), f"{owner}: {key}"
            if "/raynas:" in container["image"]:
                assert pod["securityContext"]["runAsNonRoot"] is True, owner
                assert pod["securityContext"]["runAsUser"] != 0, owner


def test_volumes_refer_to_claims_and_config_maps_that_exist(manifests):
    claims = {d["metadata"]["name"] for d in manifests["PersistentVolumeClaim"]}
    maps = {d["metadata"]["name"] for d in manifests["ConfigMap"]}
    secrets = {d["metadata"]["name"] for d in manifests["Secret"]}
    for owner, pod in _pod_specs(manifests):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{owner}: mounts an undefined volume {mount['name']}"
            for source in container.get("envFrom", []):
                assert source["secretRef"]["name"] in secrets, owner
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, owner
            if "configMap" in volume:
                assert volume["configMap"]["name"] in maps, owner
    # The shared results folder can be mounted by every Ray pod at once.
    results = _named(manifests, "PersistentVolumeClaim", "raynas-results")
    assert results["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_rayjob_runs_raynas_search_on_the_config_map(manifests, tmp_path):
    job = _named(manifests, "RayJob", "raynas-search")
    entrypoint = job["spec"]["entrypoint"]
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in head["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in head["volumes"]}
    config_map = _named(manifests, "ConfigMap",
                        volumes["search-config"]["configMap"]["name"])
    (key,) = config_map["data"]
    config_path = f"{mounts['search-config']}/{key}"
    out = re.search(r"--out (\S+)", entrypoint).group(1)
    assert f"raynas search {config_path} --out {out}" in entrypoint
    assert f"raynas search --resume {out}" in entrypoint
    assert f"-f {out}/config.yaml" in entrypoint  # cfg.CONFIG_FILE of a started search
    assert out.startswith(mounts["results"] + "/"), "results must land on the shared PVC"
    # The config map's search is a valid raynas config...
    (tmp_path / key).write_text(config_map["data"][key])
    config = cfg.load(tmp_path / key)
    assert config.evaluator.kind == "training" and config.resources.gpus_per_trial > 0
    # ...that tracks to the MLflow Service of mlflow.yaml.
    service = _named(manifests, "Service", "raynas-mlflow")
    port = service["spec"]["ports"][0]["port"]
    assert config.tracking.uri == f"http://raynas-mlflow:{port}"


def test_mlflow_runs_on_postgres_with_artifacts_on_a_pvc(manifests):
    server = _named(manifests, "Deployment", "raynas-mlflow")
    pod = server["spec"]["template"]["spec"]
    container = pod["containers"][0]
    argv = container["command"] + container["args"]
    options = dict(a.split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    assert argv[:2] == ["mlflow", "server"]
    backend = options["--backend-store-uri"]
    assert backend.startswith("postgresql://")
    # $(VAR) references resolve from the container's env / envFrom Secret.
    secret = _named(manifests, "Secret", container["envFrom"][0]["secretRef"]["name"])
    defined = set(secret["stringData"]) | {e["name"] for e in container.get("env", [])}
    assert set(re.findall(r"\$\((\w+)\)", backend)) <= defined
    host = next(e["value"] for e in container["env"] if e["name"] == "MLFLOW_DB_HOST")
    database = _named(manifests, "Deployment", host)
    assert database["spec"]["template"]["spec"]["containers"][0]["image"].startswith("postgres:")
    _named(manifests, "Service", host)
    # Artifacts: served by the tracking server from a PVC.
    assert "--serve-artifacts" in argv
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    artifacts = mounts[options["--artifacts-destination"]]
    assert "persistentVolumeClaim" in volumes[artifacts]
    # The Service's selector picks this Deployment's pods, on the port the server listens on.
    service = _named(manifests, "Service", "raynas-mlflow")
    labels = server["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert any(p["containerPort"] == int(options["--port"]) for p in container["ports"])
    # MLflow 3 answers only Host headers it allows: the Service's name must be one.
    import fnmatch

    allowed = options["--allowed-hosts"].split(",")
    assert any(fnmatch.fnmatch(f"raynas-mlflow:{options['--port']}", a) for a in allowed)


def test_the_ray_submit_script_is_the_raynas_command(tmp_path):
    """`ray submit CLUSTER.yaml deploy/cluster/raynas_job.py -- ARGS` runs `python
    raynas_job.py ARGS` on the head: the raynas CLI, arguments and exit code included."""
    import subprocess
    import sys

    script = DEPLOY / "cluster" / "raynas_job.py"
    ok = subprocess.run([sys.executable, str(script), "--version"], capture_output=True, text=True,
                        cwd=tmp_path, timeout=120)
    assert ok.returncode == 0 and ok.stdout.strip() == f"raynas {VERSION}"
    bad = subprocess.run([sys.executable, str(script), "search", "missing.yaml"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode != 0 and "missing.yaml" in bad.stderr
