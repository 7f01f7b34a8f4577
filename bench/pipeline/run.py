"""Run a pipeline's stages in order. Each stage's inputs are fingerprinted; a stage whose
fingerprint matches a finished record of this pipeline is skipped (its recorded outputs are used,
nothing loads), so a rerun costs no model call and no training step, a changed training config
re-runs train and what follows, and a killed stage runs again, resuming through the caches below
it (stored answers, training checkpoints). Stage records are runs of the suite
'pipeline:<name>' in the one store (model = the stage name, manifest = inputs and outputs)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.errors import BenchError, Interrupted, suggest
from bench.evaluate.manifest import environment, fingerprint_of
from bench.pipeline.config import STAGES, load_pipeline
from bench.pipeline.stages import STAGES as STEPS
from bench.pipeline.stages import Ctx
from bench.store import Store

VERSION = 1


def check_models_remote_code(spec, path: Path, allowed: bool) -> None:
    """Before any stage runs: each models.yaml entry the pipeline loads (candidates, training
    bases, the judge) may run its folder's code only with the user's opt-in."""
    from bench.config import check_remote_code, load_models
    from bench.train.config import load_train_config

    listed = {m.name: m for m in load_models(spec.path(spec.models)).models}
    judge = spec.evaluate.judge
    names = [(n, "select.candidates") for n in spec.select.candidates]
    names += [(judge.model, "evaluate.judge.model")] if judge else []
    for config in spec.train.configs + ([judge.train] if judge and judge.train else []):
        names.append((load_train_config(spec.path(config)).base, f"base of {config}"))
    for name, key in names:
        if name in listed:
            check_remote_code(listed[name], allowed, f"{path}: {key}")


def _done(store: Store, name: str, stage: str, fp: str) -> dict | None:
    for run in reversed(store.finished_runs(f"pipeline:{name}")):
        if run["model"] == stage and run["manifest"].get("input_fp") == fp:
            outputs = run["manifest"].get("outputs") or {}
            if all(Path(f).is_file() for f in outputs.get("files", [])):  # reports still there
                return outputs
    return None


def run_pipeline(path: Path, results: Path, from_stage: str | None, console: Console,
                 data_dir: Path | None = None, verbose: bool = False,
                 reports: Path | None = None, executor: dict | None = None,
                 trust_remote_code: bool = False) -> dict:
    """Run (or skip) every stage; returns {'state', 'summary', 'verdict', 'counts'}.
    `executor` (--executor, --ray-address) overrides the file's `executor` keys;
    `trust_remote_code` is the user's opt-in for entries that run their folder's code."""
    if from_stage is not None and from_stage not in STAGES:
        raise BenchError(f"--from {from_stage}: not a stage{suggest(from_stage, STAGES)}")
    spec = load_pipeline(path)
    check_models_remote_code(spec, path, trust_remote_code)
    env = os.environ.get("BENCH_DATA_DIR")  # first match wins: --data-dir, env, the file's
    data = data_dir or (Path(env) if env else None) or (spec.path(spec.data_dir) if spec.data_dir else None)
    store = Store(results / "bench.sqlite")
    ctx = Ctx(spec, results, store, console, data, verbose, reports=reports,
              executor=executor or {}, trust_remote_code=trust_remote_code)
    state, summary = {}, []
    start = STAGES.index(from_stage) if from_stage else len(STAGES)
    for i, stage in enumerate(STAGES):
        inputs_of, run = STEPS[stage]
        t0 = time.perf_counter()
        inputs = inputs_of(ctx, state)
        fp = fingerprint_of("pipeline", VERSION, stage, inputs)
        before = dict(ctx.counts)
        ctx.recompute = i >= start
        outputs = None if i >= start else _done(store, spec.name, stage, fp)
        ran = outputs is None
        if not ran:
            console.print(f"[dim]{stage}: unchanged (inputs {fp[:12]}), skipped[/]")
        else:
            console.print(f"[bold]{stage}[/] (inputs {fp[:12]})")
            run_id = store.start_run(f"pipeline:{spec.name}", stage, {
                "input_fp": fp, "inputs": inputs, "pipeline": str(path), **environment()})
            try:
                outputs = run(ctx, state)
            except (KeyboardInterrupt, Interrupted):
                store.finish_run(run_id, "interrupted")
                raise
            except BaseException:
                store.finish_run(run_id, "failed")
                raise
            store.finish_run(run_id, manifest_update={"outputs": outputs, "counts": {
                k: ctx.counts[k] - before[k] for k in ctx.counts}})
        state[stage] = outputs
        summary.append({"stage": stage, "ran": ran, "wall_s": time.perf_counter() - t0,
                        **{k: ctx.counts[k] - before[k] for k in ctx.counts}})
    store.close()
    return {"state": state, "summary": summary, "verdict": state["gate"]["verdict"],
            "counts": ctx.counts, "reproduced": ctx.reproduced}


def print_summary(out: Console, result: dict) -> None:
    table = Table(title="pipeline", title_justify="left")
    for col in ("stage", "", "wall s", "model calls", "training steps"):
        table.add_column(col, justify="right" if col in ("wall s", "model calls", "training steps") else "left")
    for row in result["summary"]:
        table.add_row(row["stage"], "ran" if row["ran"] else "skipped (unchanged)",
                      f"{row['wall_s']:.1f}", str(row["model_calls"]), str(row["training_steps"]))
    out.print(table)
    state = result["state"]
    out.print(f"select: {state['select']['decision']}")
    out.print(f"trained: {state['train']['tuned']} from {state['train']['base']}")
    rep = result["reproduced"]
    if rep["checked"]:
        out.print(f"recomputed {rep['checked']} stored answers: {rep['same']} the same, "
                  f"{len(rep['differ'])} different" + (f" (e.g. {', '.join(rep['differ'][:5])})"
                                                       if rep["differ"] else ""))
    out.print(f"gate: {state['gate']['verdict'].upper()} ({state['gate']['failed']} checks failed)")
    for f in [*state["gate"]["files"], *state["report"]["files"]]:
        out.print(f"wrote {f}")
