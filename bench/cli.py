"""The `bench` command: parse, call one stage, print. Exit 0 ok, 2 bad input, 1 anything else."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from bench.config import TRUST_ENV
from bench.errors import BenchError, Interrupted

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Score, compare and report language models on FewCLUE/CLUE.")
console = Console(stderr=True, soft_wrap=True)  # messages are grepped: never wrap them
out = Console(width=None if sys.stdout.isatty() else 10_000)  # piped: tables never cut text

RESULTS_ENV = "BENCH_RESULTS_DIR"
SuiteOpt = Annotated[Path, typer.Option("--suite", "-s", help="suite YAML (suites/*.yaml)")]
ModelsOpt = Annotated[Path, typer.Option("--models", "-m", help="models YAML")]
ResultsOpt = Annotated[
    Optional[Path], typer.Option("--results", help=f"results dir (env {RESULTS_ENV}; default results/)")
]


VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", "-v", help="show library warnings and progress bars here instead of results/logs/")]


ExecutorOpt = Annotated[Optional[str], typer.Option(
    "--executor", help="where model calls run: local, or ray (a Ray cluster; pip install "
    "'bench[ray]'); default the suite's `executor`, else local")]
TrustOpt = Annotated[bool, typer.Option(
    "--trust-remote-code", envvar=TRUST_ENV,
    help="allow models.yaml entries with trust_remote_code: true to run the Python code of their "
         f"folder or Hub repo (env {TRUST_ENV}=1); refused without it")]
RayAddressOpt = Annotated[Optional[str], typer.Option(
    "--ray-address", help="Ray cluster to use (implies --executor ray); default RAY_ADDRESS, "
    "else a local cluster for this run")]


def _executor(kind: str | None, address: str | None) -> dict:
    """--executor / --ray-address as overrides of the suite's (or pipeline's) `executor`."""
    if kind not in (None, "local", "ray"):
        raise BenchError(f"--executor {kind}: choose local or ray")
    if address and kind == "local":
        raise BenchError("--ray-address needs --executor ray (or no --executor)")
    return ({"kind": kind} if kind else {}) | ({"kind": "ray", "address": address} if address else {})


def _launch(launcher: str, num_processes: int, config: str | None, verbose: bool):
    """bench train's --launcher options as a Launch (None: train in this process)."""
    if launcher not in ("local", "accelerate"):
        raise BenchError(f"--launcher {launcher}: choose local or accelerate")
    if launcher == "local":
        if config:
            raise BenchError("--accelerate-config needs --launcher accelerate")
        return None
    from bench.scale.launch import Launch, accelerate_config

    return Launch(num_processes, accelerate_config(config), verbose)


def _store_path(results: Path | None) -> Path:
    """results/bench.sqlite, its folder checked (not created) before anything runs: a file in
    its place, or a place where no folder can be made, is exit 2 naming it."""
    folder = results or Path(os.environ.get(RESULTS_ENV, "results"))
    where = f"--results {folder}" if results else (
        f"{RESULTS_ENV}={folder}" if os.environ.get(RESULTS_ENV) else f"results folder {folder}")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise BenchError(f"{where}: {existing} is a file, not a folder; point it at a folder "
                         "(it is made if missing)")
    if not folder.is_dir():  # made later, once the input is checked: can it be?
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".bench-check-", dir=existing))
        except OSError as exc:
            raise BenchError(f"{where}: cannot make a folder in {existing} ({exc.strerror}); "
                             "point it at a folder you can write") from None
    store = folder / "bench.sqlite"
    if store.exists() and not store.is_file():
        raise BenchError(f"{where}: {store} is not a file; move it away or use another folder")
    return store


def _store(results: Path | None):
    """The store, created if need be: call it only once the input has been checked."""
    from bench.store import Store

    return Store(_store_path(results))


@app.command()
def run(
    suite: SuiteOpt,
    models: ModelsOpt = Path("models.yaml"),
    model: Annotated[Optional[list[str]], typer.Option("--model", help="only these models (repeatable)")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(
        help="FewCLUE/CLUE data root (env BENCH_DATA_DIR); 'github' fetches FewCLUE, checksummed")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="first N samples per task")] = None,
    results: ResultsOpt = None,
    trust_remote_code: TrustOpt = False,
    verbose: VerboseOpt = False,
    executor: ExecutorOpt = None,
    ray_address: RayAddressOpt = None,
    reuse: Annotated[bool, typer.Option(
        "--reuse-across-versions",
        help="take answers stored under another backend version (another transformers or torch) "
             "instead of recomputing them; the run and its pages say so")] = False,
) -> None:
    """Score models on a suite; everything already known comes from the cache."""
    from bench.evaluate.suite import run_suite
    from bench.report.terminal import print_runs

    print_runs(out, run_suite(suite, models, model, data_dir, limit, lambda: _store(results),
                              console, trust_remote_code, verbose, _trained(results, model),
                              executor=_executor(executor, ray_address), reuse=reuse))


@app.command()
def judge(
    suite: SuiteOpt,
    models: ModelsOpt = Path("models.yaml"),
    model: Annotated[Optional[list[str]], typer.Option("--model", help="only these models (repeatable)")] = None,
    judge_names: Annotated[Optional[list[str]], typer.Option(
        "--judge", help="judge with these models.yaml entries instead of the suite's (repeatable)")] = None,
    pairwise: Annotated[bool, typer.Option(
        "--pairwise", help="compare --candidate with --baseline, each item in both orders")] = False,
    baseline: Annotated[Optional[str], typer.Option(help="pairwise: the model compared against")] = None,
    candidate: Annotated[Optional[str], typer.Option(help="pairwise: the model judged")] = None,
    human: Annotated[Optional[Path], typer.Option(
        help="JSONL of human labels: agreement (κ pairwise, ρ per dimension) beside the judge's")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="data root (env BENCH_DATA_DIR)")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="first N samples per task")] = None,
    results: ResultsOpt = None,
    verbose: VerboseOpt = False,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Judge a suite's stored answers again (another judge or rubric), or compare two models
    pairwise; never generates: answers come from an earlier `bench run`."""
    from bench.judge.command import judge_pairwise, judge_scores

    if pairwise:
        if not (baseline and candidate):
            raise BenchError("--pairwise needs --baseline and --candidate (models that `bench "
                             "run` answered the suite with)")
        judge_pairwise(suite, models, baseline, candidate, judge_names, human, data_dir, limit,
                       lambda: _store(results), _trained(results, [baseline, candidate]),
                       console, out, verbose, trust_remote_code)
    else:
        judge_scores(suite, models, model, judge_names, human, data_dir, limit,
                     lambda: _store(results), _trained(results, model), console, out, verbose,
                     trust_remote_code)


@app.command()
def prefdata(
    data: Annotated[Path, typer.Argument(help="SFT rows (any SFT format): questions and answers")],
    judge_name: Annotated[str, typer.Option("--judge", help="models.yaml entry (backend: openai)")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the pairs and dataset_info.json")],
    models: ModelsOpt = Path("models.yaml"),
    poor_model: Annotated[Optional[str], typer.Option(
        help="the rejected side of good answers: this model's own answer")] = None,
    poor_file: Annotated[Optional[Path], typer.Option(
        help="...or one of these poor answers (JSON list or JSONL of strings; default: the "
             "demo domain's)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="lf (LLaMA-Factory ranking) | trl")] = "lf",
    name: Annotated[str, typer.Option(help="dataset name (file and dataset_info entry)")] = "prefdata",
    limit: Annotated[Optional[int], typer.Option(min=1, help="first N rows")] = None,
    results: ResultsOpt = None,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Build DPO pairs through a judge: a good answer is chosen against a poor one, a weak one
    rejected against the judge's improved answer. Resumable; malformed verdicts are counted."""
    from bench.judge.prefdata import prefdata_command

    prefdata_command(data, judge_name, models, _store_path(results).parent, out_dir, poor_model,
                     poor_file, fmt, name, limit, console, out, trust_remote_code)


def _trained(results: Path | None, names: list[str] | None) -> dict:
    """Trained models (bench train outputs in the results store) among `names`."""
    from bench.train.registry import find

    store_path = _store_path(results)
    return {n: spec for n in names or [] if (spec := find(n, store_path)) is not None}


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="training config YAML (see README, Training)")],
    models: ModelsOpt = Path("models.yaml"),
    results: ResultsOpt = None,
    verbose: VerboseOpt = False,
    launcher: Annotated[str, typer.Option(
        help="local (this process), or accelerate: --num-processes processes by `accelerate "
             "launch` (DDP; gloo on CPU), or what --accelerate-config says")] = "local",
    num_processes: Annotated[int, typer.Option(min=1, help="accelerate: processes (GPUs)")] = 2,
    accelerate_config: Annotated[Optional[str], typer.Option(
        help="accelerate: a config file, or a shipped one: zero2, zero3 (DeepSpeed; CUDA only)")] = None,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Fine-tune a model (SFT or DPO; LoRA/QLoRA or full) and register the output by name."""
    from bench.logs import log_path, third_party_output
    from bench.train.run import plan_training
    from bench.train.run import train as run_training

    root = _store_path(results).parent
    launch = _launch(launcher, num_processes, accelerate_config, verbose)
    plan = plan_training(config, models, root, launch=launch,  # all input checked first
                         trust_remote_code=trust_remote_code)
    for line in plan.warnings():  # bad rows skipped, rows dropped: as `bench run` says them
        console.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True)
    if plan.base.trust_remote_code:
        console.print(f"[yellow]warning:[/] base '{escape(plan.base.name)}' runs the Python code in "
                      f"{escape(plan.base.path)} (trust_remote_code, opted in)", soft_wrap=True)
    for o in plan.overlaps:
        console.print(f"[yellow]warning:[/] held-out {escape(o.id)} shares a span with training "
                      f"rows {escape(', '.join(o.train_ids))}: {escape(o.span[:80])}", soft_wrap=True)
    with third_party_output(log_path(root), verbose, console) as log:
        result = run_training(config, models, root, console, plan)
    if log and log.is_file() and log.stat().st_size:
        console.print(f"library messages (warnings, progress): {log}", soft_wrap=True, markup=False)
    if result.trained:
        out.print(f"trained '{result.output}' in {result.steps} steps, {result.wall_s:.1f} s; "
                  f"run folder {result.run_dir}; fingerprint {result.fingerprint[:12]}")
    else:
        out.print(f"'{result.output}': the same base, data and settings were trained before "
                  f"({result.run_dir}); nothing trained. fingerprint {result.fingerprint[:12]}")
    if result.merged:
        out.print(f"merged model (base + adapter, full precision): {result.merged}")
    if result.replaced:
        out.print(f"'{result.output}' now names this model; the one it named before "
                  f"({result.replaced[:12]}) is kept and still reachable by its fingerprint")
    out.print(f"score it: bench run --suite SUITE --model {result.output}")


@app.command()
def leaderboard(
    suite: SuiteOpt,
    out_path: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Path("reports/leaderboard.html"),
    results: ResultsOpt = None,
) -> None:
    """Write the self-contained HTML leaderboard of a suite's latest runs."""
    from bench.config import load_suite
    from bench.report.leaderboard import leaderboard_data
    from bench.report.render import write_leaderboard
    from bench.store import Store

    spec = load_suite(suite)
    data = leaderboard_data(Store.existing(_store_path(results)), spec.name)
    path = write_leaderboard(data, out_path)
    out.print(f"wrote {path} ({len(data['models'])} models, {len(data['tasks'])} tasks)")


BaselineOpt = Annotated[str, typer.Option(
    "--baseline", help="model name (its latest finished run of the suite), run id or model fingerprint")]
CandidateOpt = Annotated[str, typer.Option(
    "--candidate", help="model name (its latest finished run of the suite), run id or model fingerprint")]


@app.command()
def compare(
    suite: Annotated[str, typer.Option("--suite", "-s", help="suite YAML or suite name")],
    baseline: BaselineOpt, candidate: CandidateOpt,
    alpha: Annotated[float, typer.Option(min=0.0001, max=0.5, help="significance level (Holm)")] = 0.05,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="also write the comparison here")] = None,
    results: ResultsOpt = None,
) -> None:
    """Candidate vs baseline per task and metric: paired deltas with CIs, exact tests, Holm, and
    the smallest change each task could detect. Reads the store only."""
    import json

    from bench.compare.outputs import print_comparison
    from bench.compare.runs import compare as compare_runs
    from bench.compare.sides import suite_name
    from bench.store import Store

    comp = compare_runs(Store.existing(_store_path(results)), suite_name(suite), baseline,
                        candidate, alpha=alpha)
    print_comparison(out, comp)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({k: v for k, v in comp.items() if k != "tasks"},
                                       ensure_ascii=False, indent=1), encoding="utf-8")
        out.print(f"wrote {json_out}")


@app.command()
def gate(
    suite: Annotated[str, typer.Option("--suite", "-s", help="suite YAML or suite name")],
    baseline: BaselineOpt, candidate: CandidateOpt,
    policy: Annotated[Path, typer.Option("--policy", help="gate policy YAML (see gate.yaml)")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for gate.md, gate.junit.xml, gate.json")
                       ] = Path("reports/gate"),
    results: ResultsOpt = None,
) -> None:
    """Pass or fail a candidate against a baseline under a policy: exit 0 pass, 1 fail, 2 bad
    input. Writes a markdown summary, JUnit XML and JSON. Reads the store only."""
    from bench.compare.outputs import write_gate
    from bench.compare.policy import gate as run_gate
    from bench.compare.policy import load_policy
    from bench.compare.sides import suite_name
    from bench.store import Store

    rules = load_policy(policy)
    result = run_gate(Store.existing(_store_path(results)), suite_name(suite), baseline, candidate, rules)
    for path in write_gate(result, out_dir):
        out.print(f"wrote {path}")
    for c in result["checks"]:
        mark = "[green]pass[/]" if c["status"] == "pass" else "[red]FAIL[/]"
        out.print(f"{mark} {escape(c['task'])} · {c['metric']}: {escape(c['reason'])}")
    failed = sum(c["status"] == "fail" for c in result["checks"])
    out.print(f"gate: {result['verdict'].upper()} ({failed} of {len(result['checks'])} checks failed)")
    if result["verdict"] != "pass":
        raise typer.Exit(1)


@app.command()
def report(
    suite: Annotated[str, typer.Option("--suite", "-s", help="suite YAML or suite name")],
    baseline: BaselineOpt, candidate: CandidateOpt,
    out_path: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Path("reports/before_after.html"),
    results: ResultsOpt = None,
) -> None:
    """Write the self-contained before/after HTML report of a candidate against a baseline:
    what improved and regressed, flipped items, judge dimensions, training curves, provenance."""
    from bench.compare.sides import suite_name
    from bench.report.before_after import before_after_data, write_before_after
    from bench.store import Store

    data = before_after_data(Store.existing(_store_path(results)), suite_name(suite), baseline, candidate)
    out.print(f"wrote {write_before_after(data, out_path)}")


@app.command()
def pipeline(
    path: Annotated[Path, typer.Argument(help="pipeline YAML (see suites/loop.yaml)")],
    from_stage: Annotated[Optional[str], typer.Option(
        "--from", help="recompute this stage and the ones after it (select, train, evaluate, "
                       "gate, report)")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(
        help="FewCLUE/CLUE data root (default: the pipeline's data_dir, else env BENCH_DATA_DIR)")] = None,
    results: ResultsOpt = None,
    reports: Annotated[Optional[Path], typer.Option(
        help="folder for the reports (default: the pipeline's report.out)")] = None,
    verbose: VerboseOpt = False,
    executor: ExecutorOpt = None,
    ray_address: RayAddressOpt = None,
    trust_remote_code: TrustOpt = False,
) -> None:
    """select -> train -> evaluate -> gate -> report. Unchanged stages are skipped; the exit
    code is the gate's (0 pass, 1 fail; 2 bad input)."""
    from bench.pipeline.run import print_summary, run_pipeline

    result = run_pipeline(path, _store_path(results).parent, from_stage, console, data_dir,
                          verbose, reports, _executor(executor, ray_address), trust_remote_code)
    print_summary(out, result)
    if result["verdict"] != "pass":
        raise typer.Exit(1)


@app.command()
def export(
    suite: SuiteOpt,
    fmt: Annotated[str, typer.Option("--format", help="csv | jsonl | parquet")] = "csv",
    out_dir: Annotated[Path, typer.Option("--out", help="folder for metrics.<fmt> and samples.<fmt>")
                       ] = Path("reports/export"),
    results: ResultsOpt = None,
) -> None:
    """Write a suite's latest runs as flat tables: per-task metrics (CI, n, signature,
    fingerprints) and per-sample records, for pandas, DuckDB or a spreadsheet."""
    from bench.config import load_suite
    from bench.report.export import export as write_tables
    from bench.store import Store

    spec = load_suite(suite)
    for path in write_tables(Store.existing(_store_path(results)), spec.name, out_dir, fmt):
        out.print(f"wrote {path}")


@app.command("models")
def list_models(models: ModelsOpt = Path("models.yaml"), results: ResultsOpt = None) -> None:
    """List and validate the models in a models YAML, and the trained models in the results."""
    from bench.config import load_models
    from bench.report.terminal import print_models, print_trained
    from bench.train.registry import trained

    spec = load_models(models)
    ok = print_models(out, spec)
    print_trained(out, trained(_store_path(results)))
    if not ok:
        raise BenchError(f"{models}: some models cannot be found (see the table above)")


@app.command("fetch-data")
def fetch_data(
    tasks: Annotated[Optional[list[str]], typer.Argument(help="FewCLUE tasks (default: all nine)")] = None,
) -> None:
    """Download FewCLUE dev/test files at a pinned commit, checksummed, into the cache; print the
    dir. (`--data-dir github` in `bench run` does the same on the fly.)"""
    from bench.tasks.download import ensure

    out.print(str(ensure(tasks or None)))


@app.command()
def decontam(
    train: Annotated[list[Path], typer.Option("--train", help="training data (repeatable; any format)")],
    held_out: Annotated[list[Path], typer.Option("--held-out", help="held-out data (repeatable)")],
    n: Annotated[int, typer.Option(min=1, help="shared span length, in characters")] = 13,
) -> None:
    """Report held-out questions that share an n-character span with training data; exit 1 when
    any does."""
    from bench.report.terminal import print_overlaps
    from bench.train.decontam import heldout_texts, overlaps, read_rows, train_texts

    texts = [(f"{p.name}:{i}", t) for p in train for i, t in train_texts(read_rows(p))]
    items = [(f"{p.name}:{i}", q) for p in held_out for i, q in heldout_texts(read_rows(p))]
    found = overlaps(texts, items, n)
    print_overlaps(out, found, len(items), n)
    if found:
        raise typer.Exit(1)


@app.command()
def demo(
    data_dir: Annotated[Optional[Path], typer.Option(help="real FewCLUE root (env BENCH_DATA_DIR)")] = None,
    results: ResultsOpt = None,
    reports: Annotated[Optional[Path], typer.Option(help="reports folder (default reports/)")] = None,
    verbose: VerboseOpt = False,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Offline default: the whole loop (suites/loop.yaml) on tiny local models and the demo
    domain: select, train, evaluate with a served judge, gate, report. Exit code: the gate's."""
    from bench.demo import run_demo

    code = run_demo(data_dir, _store_path(results).parent, reports, console, out, verbose,
                    trust_remote_code)
    if code:
        raise typer.Exit(code)


@app.command()
def serve(
    model: Annotated[str, typer.Argument(help="a models.yaml entry or a trained model, by name")],
    engine: Annotated[str, typer.Option(help="transformers | vllm | lmdeploy")] = "transformers",
    port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port")] = 8000,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    models: ModelsOpt = Path("models.yaml"),
    results: ResultsOpt = None,
    timeout: Annotated[float, typer.Option(min=1, help="seconds to wait until it is ready")] = 600,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Serve a model over an OpenAI-compatible API until Ctrl-C or SIGTERM; print the
    models.yaml entry (backend: openai) that points at it."""
    from bench.serve.run import serve as run_server

    run_server(model, engine, host, port, models, _store_path(results).parent, timeout,
               trust_remote_code, out, console)


def _on_signal(signum, _frame) -> None:
    """SIGINT/SIGTERM become Interrupted (whatever runs cleans up and says what it kept); a
    second signal gets the default behaviour."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Interrupted(signum)


def main() -> None:
    from bench.threads import prepare_environment

    prepare_environment()  # before anything imports torch
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        code = app(standalone_mode=False)  # a typer.Exit comes back as its code
        if isinstance(code, int) and code:
            sys.exit(code)
    except BenchError as exc:
        console.print(Text.assemble(("error: ", "bold red"), str(exc)))
        sys.exit(exc.exit_code)
    except Interrupted as exc:
        name = signal.Signals(exc.signum).name
        console.print(Text.assemble(("interrupted ", "bold red"), f"by {name}: ",
                                    exc.detail or "no evaluation had started; nothing was written"))
        sys.exit(128 + exc.signum)
    except (typer.Exit, SystemExit) as exc:
        sys.exit(getattr(exc, "exit_code", getattr(exc, "code", 0)))
    except Exception as exc:  # noqa: BLE001 - last resort: one line, the traceback on request
        # click's exceptions, or typer's vendored copies of them (typer >= 0.20): told by name
        names = {c.__name__ for c in type(exc).__mro__}
        if "ClickException" in names:  # a usage error: unknown option, missing argument
            exc.show()
            sys.exit(exc.exit_code)
        if "Abort" in names:  # click turns a KeyboardInterrupt into Abort
            sys.exit(130 if isinstance(exc.__context__, KeyboardInterrupt) else 1)
        if os.environ.get("BENCH_DEBUG"):
            raise
        console.print(Text.assemble(
            ("failed: ", "bold red"), f"{type(exc).__name__}: {exc} (BENCH_DEBUG=1 for the traceback)"
        ))
        sys.exit(1)


if __name__ == "__main__":
    main()
