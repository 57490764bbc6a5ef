"""The ``raynas`` command.

* ``raynas bench`` — compare policies on a benchmark table (many seeds, on Ray).
* ``raynas search [CONFIG.yaml]`` — one resumable search (default: real NAS on MNIST-1D).
* ``raynas report DIR [--sync]`` — rebuild a search's summary and plots; send pending
  MLflow records. ``raynas report --compare DIR1 DIR2 ...`` overlays searches.

Exit status: 0 on success; 2 for a user mistake (one ``raynas: error: ...`` line); 3
when a search ran but no evaluation succeeded; 4 when it could not start (Ray cluster,
resources, an output folder it cannot write); 130 when interrupted (the line says how
to resume). Errors raynas does not expect are bugs: they keep their traceback (status 1).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from raynas import __version__, interrupts
from raynas.errors import (
    EXIT_INTERRUPTED,
    EXIT_NO_SUCCESS,
    EXIT_STARTUP,
    ArgumentError,
    RaynasError,
    SearchInterrupted,
    WriteError,
)

# Errors of the file system that name a path and are the machine's state, not a bug:
# permission denied, read-only file system, no space left, quota exceeded, file too large.
_DISK_ERRNOS = frozenset({1, 13, 27, 28, 30, 122})



def _csv(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _table_arg(parser: argparse.ArgumentParser) -> None:
    from raynas.tables import TABLE_ENV

    parser.add_argument(
        "--benchmark", type=Path, default=None, metavar="TABLE",
        help=f"benchmark table (.parquet/.csv) of the shared schema; default: ${TABLE_ENV} "
             "if set, else the NB201 table shipped with raynas",
    )
    parser.add_argument("--space", default="nb201",
                        help=f"search space of the table, of: {_names()['spaces']}")
    parser.add_argument("--search-metric", default="valid_acc",
                        help="metric the search optimises, <split>_<metric>")
    parser.add_argument("--report-metric", default="test_acc",
                        help="metric reported for the incumbent")
    parser.add_argument("--mode", choices=("max", "min"), default="max",
                        help="max for accuracies, min for errors and losses")
    parser.add_argument("--objectives", type=_objectives, default=(),
                        help="multi-objective bench, e.g. valid_acc:max,params:min: writes "
                             "hypervolume.parquet (the fronts' share of the true front)")


def _objectives(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in _csv(text):
        metric, _, mode = item.partition(":")
        if mode not in ("max", "min"):
            raise argparse.ArgumentTypeError(f"{item!r}: expected metric:max or metric:min")
        pairs.append((metric, mode))
    return tuple(pairs)


def _policy_kwargs(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"--policy-kwargs is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ArgumentError("--policy-kwargs must be a JSON object")
    return value


# raynas.data.DATASETS, without importing torch; or a module:function
TRAINING_DATASETS = ("mnist1d", "digits", "cifar10", "cifar100", "folder", "npz")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                     argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option; descriptions keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def _names() -> dict[str, str]:
    """The registered names a user can pick, for ``--help``."""
    from raynas.policies import POLICIES
    from raynas.spaces import SPACES

    return {"policies": ", ".join(POLICIES), "spaces": ", ".join(SPACES),
            "datasets": ", ".join(TRAINING_DATASETS) + " or a module:function"}


DESCRIPTION = """Ray-based distributed neural architecture search, framed as reinforcement learning.

commands:
  search      one resumable search from a YAML config (default: real NAS on MNIST-1D)
  bench       compare policies on a benchmark table (many seeds, on Ray)
  report      rebuild a search folder's summary and plots; compare searches
  meta-train  meta-train a CATCH agent on a table's datasets

Policies: {policies}.
Spaces: {spaces}. Training datasets: {datasets} (or a benchmark table's datasets).
`raynas COMMAND --help` shows each command's options and defaults."""


def build_parser() -> argparse.ArgumentParser:
    names = _names()
    parser = argparse.ArgumentParser(prog="raynas", description=DESCRIPTION.format(**names),
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"raynas {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="debug logging, and tracebacks for raynas's own errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, formatter_class=_HelpFormatter)

    bench = command("bench", "compare policies on a benchmark table, on Ray")
    _table_arg(bench)
    bench.add_argument("--datasets", type=_csv, default="cifar10,cifar100,imagenet16_120",
                       help="datasets of the table (comma-separated)")
    bench.add_argument("--policies", type=_csv, default="random,rea,ls",
                       help=f"comma-separated, of: {names['policies']}")
    bench.add_argument("--seeds", type=int, default=20, help="seeds per policy and dataset")
    bench.add_argument("--budget", type=int, default=200, help="queries per search")
    bench.add_argument("--out", type=Path, default="raynas-results/bench",
                       help="results folder (a rerun computes only the missing searches)")
    bench.add_argument("--base-seed", type=int, default=0, help="the first seed")
    bench.add_argument("--batch-size", type=int, default=1,
                       help="architectures per synchronous round, in process")
    bench.add_argument("--workers", type=int, default=1,
                       help="simulated workers evaluating at once on the table's clock; "
                            "results arrive in simulated-time order")
    bench.add_argument("--cost-metric", default=None,
                       help="the table's cost column each evaluation takes, in seconds "
                            "(default with --workers: train_time)")
    bench.add_argument("--synchronous", action="store_true",
                       help="with --workers: rounds of WORKERS architectures that wait for "
                            "the slowest (batch synchronous) instead of asynchronous")
    bench.add_argument(
        "--policy-kwargs", default=None,
        help='JSON hyperparameters per policy, e.g. \'{"rea": {"sample_size": 10}}\'',
    )
    bench.add_argument("--keep-histories", action="store_true",
                       help="also save every search's full history to DIR/histories/")
    bench.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray instance")
    bench.add_argument("--address", default=None, help="Ray cluster address (default: local)")
    bench.add_argument("--execution", choices=("auto", "ray", "local"), default="auto",
                       help="where the searches run: Ray tasks, this process, or auto (Ray "
                            "on a cluster; locally when the first search's pace says the "
                            "rest finish sooner here than Ray starts)")
    bench.add_argument("--transfer", choices=("leave-one-out",), default=None,
                       help="catch: meta-train on the table's other datasets before each one "
                            "(checkpoints cached in DIR/catch/)")
    bench.add_argument("--meta-iterations", type=int, default=30,
                       help="catch meta-training rounds (with --transfer)")
    bench.add_argument("--meta-queries", type=int, default=30,
                       help="evaluations per meta-training rollout (with --transfer)")

    meta = command("meta-train", "meta-train a CATCH agent on a table's datasets")
    _table_arg(meta)
    meta.add_argument("--tasks", type=_csv, required=True,
                      help="datasets of the table to meta-train on, e.g. cifar10,cifar100")
    meta.add_argument("--out", type=Path, required=True, help="checkpoint file (JSON) to write")
    meta.add_argument("--iterations", type=int, default=30, help="rollout + update rounds")
    meta.add_argument("--queries", type=int, default=30, help="evaluations per rollout")
    meta.add_argument("--steps", type=int, default=20, help="learner steps per task per round")
    meta.add_argument("--seed", type=int, default=0)
    meta.add_argument("--policy-kwargs", default=None,
                      help='JSON CATCH options, e.g. \'{"latent": 8, "normalize": "zscore"}\'')
    meta.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray instance")
    meta.add_argument("--address", default=None, help="Ray cluster address (default: local)")
    meta.add_argument("--mlflow", default=None, metavar="URI",
                      help="log the meta-training curves to this MLflow tracking URI")

    search = command("search", "one search from a YAML config (default: real NAS on MNIST-1D)")
    search.add_argument("config", nargs="?", type=Path, default=None,
                        help="YAML config (see examples/); default: the embedded MNIST-1D "
                             "search (examples/mnist1d/search.yaml)")
    search.add_argument("--out", type=Path, default=None,
                        help="output folder (default: raynas-results/search-<time>)")
    search.add_argument("--resume", type=Path, default=None, metavar="DIR",
                        help="continue the search in DIR with its saved config")
    search.add_argument("--budget", type=int, default=None, metavar="N",
                        help="override the config's budget: N architectures (queries, trials)")
    search.add_argument("--seed", type=int, default=None, help="override the config's seed")
    search.add_argument("--policy", default=None, metavar="NAME",
                        help=f"override the config's policy (its options kept only when the "
                             f"name is the same), of: {names['policies']}")
    search.add_argument("--print-config", action="store_true",
                        help="print the effective config (defaults and overrides filled in, "
                             "as YAML) and exit")
    shown = search.add_mutually_exclusive_group()
    shown.add_argument("-v", "--verbose", action="store_true",
                       help="also Ray Tune's live trial table (training searches)")
    shown.add_argument("--quiet", action="store_true",
                       help="only a one-line progress bar, then the result")
    search.add_argument("--address", default=None,
                        help="Ray cluster for training trials: 'auto' (the one running on this "
                             "machine), host:port or ray://host:port; default: $RAY_ADDRESS, "
                             "else a new local instance (never a cluster that merely runs here)")
    search.add_argument("--trust-folder", action="store_true",
                        help="resume even if Tune's files in the folder are not signed by this "
                             "machine's raynas key (Tune unpickles them: only for folders you "
                             "trust)")

    report = command("report", "rebuild a search folder's summary.md and plots, or compare "
                               "searches")
    report.add_argument("folder", type=Path, nargs="?", help="a raynas search results folder")
    report.add_argument("--compare", type=Path, nargs="+", metavar="DIR", default=None,
                        help="overlay these search folders: compare.md and compare.png")
    report.add_argument("--out", type=Path, default=".",
                        help="where --compare writes (default: the current folder)")
    report.add_argument("--sync", action="store_true",
                        help="send MLflow records that could not be sent during the search")
    report.add_argument("--uri", default=None,
                        help="tracking URI for --sync (default: the folder's SQLite store)")
    return parser


def _need_table(args: argparse.Namespace) -> Path:
    from raynas.tables import default_table

    return args.benchmark if args.benchmark is not None else default_table()


def cmd_bench(args: argparse.Namespace) -> int:
    from raynas.bench import BenchConfig, run_bench

    config = BenchConfig(
        benchmark=_need_table(args), datasets=args.datasets, policies=args.policies,
        seeds=args.seeds, budget=args.budget, out=args.out, space=args.space,
        base_seed=args.base_seed, batch_size=args.batch_size, workers=args.workers,
        cost_metric=args.cost_metric, synchronous=args.synchronous,
        search_metric=args.search_metric, report_metric=args.report_metric, mode=args.mode,
        policy_kwargs=_policy_kwargs(args.policy_kwargs), num_cpus=args.num_cpus,
        address=args.address, objectives=args.objectives, keep_histories=args.keep_histories,
        transfer=args.transfer, execution=args.execution,
        meta={"iterations": args.meta_iterations, "queries": args.meta_queries},
    )
    run_bench(config)
    print((Path(args.out) / "summary.md").read_text())
    extra = ", hypervolume.parquet" if args.objectives else ""
    print(f"wrote {args.out}/curves.parquet{extra}, summary.md, regret.png")
    return 0


def cmd_meta_train(args: argparse.Namespace) -> int:
    import ray

    from raynas.policies.catch import meta_train, read_checkpoint, table_tasks
    from raynas.spaces import get_space

    options = _policy_kwargs(args.policy_kwargs)
    from raynas.cluster import connect

    table = _need_table(args)
    kwargs = {"space": args.space, "search_metric": args.search_metric,
              "report_metric": args.report_metric}
    table_tasks(table, args.tasks, **kwargs)  # bad datasets fail here, before Ray starts
    connect(args.address, args.num_cpus)
    hook = _mlflow_hook(args.mlflow, args, options) if args.mlflow else None
    try:
        # now the validated table goes into the object store once, shared by every task
        tasks = table_tasks(table, args.tasks, **kwargs)
        meta_train(get_space(args.space), tasks, iterations=args.iterations,
                   queries=args.queries, steps=args.steps, seed=args.seed, out=args.out,
                   on_iteration=hook, **options)
    finally:
        ray.shutdown()
    info = read_checkpoint(args.out)["info"]
    print(f"meta-trained on {', '.join(args.tasks)} in {info['seconds']:.1f} s; wrote {args.out}")
    print(f"adapt it: policy: {{name: catch, checkpoint: {Path(args.out).resolve()}}}")
    return 0


def _mlflow_hook(uri: str, args: argparse.Namespace, options: dict):
    """An ``on_iteration`` hook logging meta-training curves to an MLflow run."""
    from raynas.tracking import MlflowLogger

    logger_ = MlflowLogger(Path(args.out).resolve().parent, uri, "raynas-meta-train")
    run = logger_.start_run({"tasks": ",".join(args.tasks), "iterations": args.iterations,
                             "queries": args.queries, "steps": args.steps, "seed": args.seed,
                             **options}, {"raynas.kind": "catch-meta-train"},
                            Path(args.out).stem)

    def hook(iteration: int, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        logger_.log_metrics(run, [(k, float(v), now, iteration) for k, v in metrics.items()])
        if iteration == args.iterations - 1:
            logger_.end_run(run)

    return hook


def cmd_search(args: argparse.Namespace) -> int:
    from raynas import config as cfg
    from raynas.driver import describe, run_search

    overrides = {"budget": args.budget, "seed": args.seed, "policy": args.policy}
    given = [f"--{k}" for k, v in overrides.items() if v is not None]
    if args.resume is not None:
        if args.config is not None or args.out is not None or given:
            raise ArgumentError(f"--resume DIR continues the search in DIR with its saved "
                                f"config: give no config, --out"
                                f"{', ' + ', '.join(given) if given else ''} or overrides")
        if args.print_config:
            print(cfg.load(args.resume / "config.yaml").to_yaml(), end="")
            return 0
    else:
        if args.trust_folder:
            raise ArgumentError("--trust-folder is for --resume DIR: a new search trusts nothing")
        config = cfg.override(cfg.load(args.config), **overrides)
        if args.print_config:
            print(config.to_yaml(), end="")
            return 0
    options = {"verbose": 0 if args.quiet else 2 if args.verbose else 1,
               "address": args.address, "trust_folder": args.trust_folder}
    if args.resume is not None:
        args.out = args.resume
        summary = run_search(None, args.resume, resume=True, **options)
    else:
        args.out = args.out or Path("raynas-results") / time.strftime("search-%Y%m%d-%H%M%S")
        summary = run_search(config, args.out, **options)
    print("\n".join(describe(summary)))
    if summary.best_arch is None:
        print(f"raynas: error: {summary.failure or 'no evaluation succeeded'}", file=sys.stderr)
        return EXIT_NO_SUCCESS
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from raynas.report import write_report

    if args.compare is not None:
        from raynas.report.compare import write_comparison

        folders = ([args.folder] if args.folder else []) + args.compare
        for path in write_comparison(folders, args.out):
            print(f"wrote {path}")
        return 0
    if args.folder is None:
        raise ArgumentError("give a search folder, or --compare DIR1 DIR2 ...")
    for path in write_report(args.folder):
        print(f"wrote {path}")
    if args.sync:
        from raynas.tracking import redact, replay_pending

        sent = replay_pending(args.folder, args.uri)
        where = redact(args.uri) if args.uri else "the folder's SQLite store"
        print(f"sent {sent} pending MLflow record(s) to {where}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        with interrupts.catching():
            status = COMMANDS[args.command](args)
            if interrupts.requested():  # its KeyboardInterrupt was swallowed on the way
                raise KeyboardInterrupt
        return status
    except SearchInterrupted as exc:
        print(f"raynas: interrupted: {exc}", file=sys.stderr)
        return exc.exit_status
    except RaynasError as exc:
        if args.debug:
            raise
        hint = _keep_hint(args) if isinstance(exc, WriteError) else ""
        print(f"raynas: error: {exc}{hint}", file=sys.stderr)
        return exc.exit_status
    except OSError as exc:
        if exc.errno not in _DISK_ERRNOS or args.debug:
            raise
        what = f"cannot write {exc.filename}" if exc.filename else "a write failed"
        print(f"raynas: error: {what}: {exc.strerror or exc}{_keep_hint(args)}", file=sys.stderr)
        return EXIT_STARTUP
    except KeyboardInterrupt:
        print(f"raynas: interrupted{_keep_hint(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED


COMMANDS = {"bench": cmd_bench, "search": cmd_search, "report": cmd_report,
            "meta-train": cmd_meta_train}


def _keep_hint(args: argparse.Namespace) -> str:
    """How to go on after a search stopped half-way: what is kept and the command."""
    if args.command == "search" and getattr(args, "out", None) is not None:
        return (f"; what finished is saved in {args.out}; continue with: raynas search "
                f"--resume {args.out}")
    if args.command == "bench":
        return (f"; finished searches are kept in {args.out}/runs; rerun the same command to "
                "compute only the missing ones")
    return ""


if __name__ == "__main__":
    sys.exit(main())
