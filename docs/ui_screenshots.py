"""Screenshots of MLflow's UI for a table search and a training search, in headless
Chromium, with checks of what the pages show.

Runs a 60-query table search (NB201, random, a front) and a 3-trial training search on
digits into one SQLite store, serves it with a real ``mlflow server``, and has headless
Chromium render (``--dump-dom``, JavaScript run) and photograph:

* the experiment page at the link raynas prints (``...?workflowType=machine_learning``):
  it must open on its runs table with the searches' run names. (MLflow 3.17's UI opens
  every experiment in its GenAI view, a traces page, unless the URL or its "Model
  training" switch asks otherwise; the ``mlflow.experimentKind`` tag raynas sets is what
  versions without that switch read. ``genai.png`` shows the plain link.)
* each search's parent run: its name ``<policy> on <space> (<folder>)``, the
  ``raynas.best_arch`` tag, ``best/*`` metrics, the summary and front artifacts;
* a training search's child run: named after its architecture, per-epoch metrics.

Usage (needs ``chromium``: ``apt-get install chromium``; about 2 minutes on 2 CPUs):

    python docs/ui_screenshots.py --out /tmp/ui

It prints each check and writes ``experiments.png``, ``genai.png``, ``runs.png``,
``table-run.png``, ``training-run.png`` and ``child-run.png`` into ``--out``; it exits 1
when a check fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

TABLE_CONFIG = """space: {name: nb201}
policy: {name: random}
evaluator: {kind: tabular, dataset: cifar10}
front: {objectives: {valid_acc: max, params: min}}
budget: 60
tracking: {uri: URI, experiment: raynas-ui}
"""
TRAINING_CONFIG = """space: {name: nb201, channels: 4, cells_per_stage: 1}
policy: {name: random}
evaluator: {kind: training, dataset: digits, input_size: 8, epochs: 2, batch_size: 128}
budget: 3
tracking: {uri: URI, experiment: raynas-ui}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("needs chromium (apt-get install chromium)")


def _chromium(browser: str, url: str, png: Path | None = None) -> str:
    """The page's rendered DOM (after its JavaScript ran); a screenshot with ``png``."""
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--virtual-time-budget=15000", "--window-size=1400,1000"]
    if png is not None:
        subprocess.run([*base, f"--screenshot={png}", url], capture_output=True, timeout=120)
    return subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True,
                          timeout=120).stdout


def _search(config: str, uri: str, out: Path) -> None:
    path = out.with_suffix(".yaml")
    path.write_text(config.replace("URI", uri))
    raynas = Path(sys.executable).parent / "raynas"
    subprocess.run([str(raynas), "search", str(path), "--out", str(out), "--quiet"], check=True,
                   env={**os.environ, "RAY_AUTH_MODE": "disabled",
                        "RAY_USAGE_STATS_ENABLED": "0"}, timeout=600)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/raynas-ui"))
    args = parser.parse_args()
    import mlflow

    browser = _browser()
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    port = _free_port()
    store = f"sqlite:///{out / 'mlflow.db'}"
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store,
         "--default-artifact-root", str(out / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    failures = []

    def check(ok: bool, what: str) -> None:
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            failures.append(what)

    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        _search(TABLE_CONFIG, uri, out / "table")
        _search(TRAINING_CONFIG, uri, out / "training")
        client = mlflow.MlflowClient(uri)
        experiment = client.get_experiment_by_name("raynas-ui")
        runs = client.search_runs([experiment.experiment_id])
        parents = {r.data.tags.get("raynas.out_dir"): r for r in runs
                   if "mlflow.parentRunId" not in r.data.tags}
        table_run = parents[str(out / "table")]
        training_run = parents[str(out / "training")]
        child = next(r for r in runs
                     if r.data.tags.get("mlflow.parentRunId") == training_run.info.run_id)
        check(experiment.tags.get("mlflow.experimentKind") == "custom_model_development",
              "the experiment is marked as model training (mlflow.experimentKind)")

        from raynas.driver import ML_VIEW

        _chromium(browser, f"{uri}/#/experiments{ML_VIEW}", out / "experiments.png")
        _chromium(browser, f"{uri}/#/experiments/{experiment.experiment_id}", out / "genai.png")
        page = _chromium(browser, f"{uri}/#/experiments/{experiment.experiment_id}{ML_VIEW}",
                         out / "runs.png")
        check(table_run.info.run_name in page and training_run.info.run_name in page,
              f"the experiment opens on its runs, listing {table_run.info.run_name!r} and "
              f"{training_run.info.run_name!r}")
        check("Model training" in page and ">Runs<" in page.replace(" ", ""),
              "it is MLflow's machine-learning view (Runs), not the GenAI traces page")
        for name, run in (("table-run.png", table_run), ("training-run.png", training_run)):
            page = _chromium(browser, f"{uri}/#/experiments/{experiment.experiment_id}/runs/"
                             f"{run.info.run_id}{ML_VIEW}", out / name)
            check(run.data.tags["raynas.best_arch"] in page,
                  f"{run.info.run_name}: the page shows the best architecture (tag)")
            check("best/test_acc" in page, f"{run.info.run_name}: best/test_acc is a metric")
        artifacts = {a.path for a in client.list_artifacts(table_run.info.run_id)}
        check({"summary.md", "pareto.parquet", "pareto.png"} <= artifacts,
              f"the table search logged summary.md and its front ({sorted(artifacts)})")
        page = _chromium(browser, f"{uri}/#/experiments/{experiment.experiment_id}/runs/"
                         f"{child.info.run_id}{ML_VIEW}", out / "child-run.png")
        check(child.data.params["arch"] in child.info.run_name and child.info.run_name in page,
              f"the child run is named after its architecture ({child.info.run_name!r})")
        check(len(client.get_metric_history(child.info.run_id, "valid_acc")) == 2,
              "the child run has a valid_acc point per epoch")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"screenshots in {out}: experiments.png runs.png table-run.png training-run.png "
          f"child-run.png")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
