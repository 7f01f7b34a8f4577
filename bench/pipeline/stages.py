"""The five stages. Each has `inputs(ctx, state)`, a cheap description of everything that decides
its result (fingerprinted by the runner to skip an unchanged stage), and `run(ctx, state)`,
which does the work through the ordinary commands' code (bench run, bench train, bench gate,
bench report), so every result lands in the one store, cached by content as usual."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bench.config import load_models
from bench.errors import BenchError
from bench.evaluate.manifest import fingerprint_of
from bench.pipeline.config import Pipeline
from bench.store import Store


@dataclass
class Ctx:
    spec: Pipeline
    results: Path
    store: Store
    console: Console
    data_dir: Path | None
    verbose: bool = False
    recompute: bool = False  # --from: ask the models again and check that answers reproduce
    reports: Path | None = None  # --reports: instead of the file's report.out
    executor: dict = field(default_factory=dict)  # --executor / --ray-address over the file's
    trust_remote_code: bool = False  # --trust-remote-code: entries that run their folder's code
    counts: dict = field(default_factory=lambda: {"model_calls": 0, "training_steps": 0})
    reproduced: dict = field(default_factory=lambda: {"checked": 0, "same": 0, "differ": []})

    @property
    def models(self) -> Path:
        return self.spec.path(self.spec.models)

    @property
    def out_dir(self) -> Path:
        return (self.reports or Path(self.spec.report.out)) / self.spec.name

    def trained(self, names: list[str]) -> dict:
        from bench.train.registry import find

        listed = {m.name for m in load_models(self.models).models}
        return {n: s for n in names if n not in listed and (s := find(n, self.store.path))}

    def plan(self, suite: str, names: list[str], limit: int | None):
        from bench.evaluate.suite import plan_run

        where = (self.spec.executor.model_dump(exclude_unset=True) if self.spec.executor else {})
        plan = plan_run(self.spec.path(suite), self.models, names, self.data_dir, limit,
                        self.trust_remote_code, console=self.console, trained=self.trained(names),
                        executor=where | self.executor)
        plan.recompute = self.recompute
        return plan

    def quiet(self):
        """Library output (warnings, progress bars) to results/logs/ unless --verbose."""
        from bench.logs import log_path, third_party_output

        return third_party_output(log_path(self.results), self.verbose, self.console)

    def plan_training(self, path: Path, overrides: dict | None = None):
        from bench.train.run import plan_training

        plan = plan_training(path, self.models, self.results, overrides,
                             trust_remote_code=self.trust_remote_code)
        for line in plan.warnings():
            self.console.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True)
        return plan

    def train(self, path: Path, plan=None, verify: bool = False):
        from bench.train.run import train

        plan = plan or self.plan_training(path)
        with self.quiet():
            result = train(path, self.models, self.results, self.console, plan, verify)
        self.counts["training_steps"] += result.steps if result.trained else 0
        return result

    def execute(self, plan) -> list:
        from bench.evaluate.suite import execute

        with self.quiet() as log:
            runs = execute(plan, self.store, self.console, log)
        self.counts["model_calls"] += sum(r.model_calls for r in runs)
        for run in runs:
            for task in run.tasks:
                if rep := task.timings.get("reproduced"):
                    self.reproduced["checked"] += rep["checked"]
                    self.reproduced["same"] += rep["same"]
                    self.reproduced["differ"] += [f"{run.model}/{task.task}/{i}" for i in rep["differ"]]
        return runs


def fingerprints(plan) -> dict:
    """The identities of a plan's models and tasks (no weights load: tokenizers and file hashes)."""
    from bench.backends import get_backend

    return {"models": {s.name: get_backend(s).fingerprint for s in plan.models},
            "tasks": {t.key: t.fingerprint for t in plan.tasks}}


def model_fp(ctx: Ctx, name: str) -> str:
    from bench.backends import get_backend
    from bench.train.registry import resolve

    return get_backend(resolve(name, ctx.models, ctx.store.path)).fingerprint


# -- select ----------------------------------------------------------------------------------

def select_inputs(ctx: Ctx, state: dict) -> dict:
    sel = ctx.spec.select
    return {"select": sel.model_dump(exclude={"suite"}),  # the suite by content, not by path
            "suite": ctx.spec.path(sel.suite).read_text(encoding="utf-8"),
            **fingerprints(ctx.plan(sel.suite, sel.candidates, sel.limit))}


def select_run(ctx: Ctx, state: dict) -> dict:
    from bench.report.terminal import print_runs

    sel = ctx.spec.select
    plan = ctx.plan(sel.suite, sel.candidates, sel.limit)
    runs = ctx.execute(plan)
    print_runs(ctx.console, runs)
    rows = []
    for run in runs:
        manifest = ctx.store.run(run.run_id)["manifest"]
        params = (manifest.get("backend") or {}).get("params")
        values = {t.task: t.metrics[next(iter(t.metrics))]["value"] for t in run.tasks}
        if sel.weights:
            unknown = sorted(set(sel.weights) - set(values))
            if unknown:
                raise BenchError(f"select.weights: no task {unknown[0]} in {sel.suite}; tasks: "
                                 + ", ".join(values))
            total = sum(sel.weights.get(k, 0.0) for k in values)
            score = {"value": sum(v * sel.weights.get(k, 0.0) for k, v in values.items()) / total,
                     "ci_low": None, "ci_high": None}
        else:
            score = run.average
        rows.append({"model": run.model, "run_id": run.run_id, "params": params,
                     "score": score["value"], "ci_low": score["ci_low"], "ci_high": score["ci_high"],
                     "eligible": not (sel.max_params and params and params > sel.max_params)})
    ranked = sorted(rows, key=lambda r: (not r["eligible"], -(r["score"] or 0.0)))
    if not ranked[0]["eligible"]:
        raise BenchError(f"select: no candidate has at most {sel.max_params:g} parameters")
    return {"winner": ranked[0]["model"], "ranking": ranked, "decision": decision(ranked, sel)}


def decision(ranked: list[dict], sel) -> str:
    """How the winner was picked, in words, saying when its lead sits inside the CIs."""
    win = ranked[0]
    how = ("weighted task score (" + ", ".join(f"{k} ×{w:g}" for k, w in sel.weights.items())
           + ")") if sel.weights else "suite average"
    text = f"{win['model']} has the best {how}: {win['score'] * 100:.1f}"
    if win["ci_low"] is not None:
        text += f" [{win['ci_low'] * 100:.1f}, {win['ci_high'] * 100:.1f}]"
    eligible = [r for r in ranked[1:] if r["eligible"]]
    if eligible:
        nxt = eligible[0]
        text += f", ahead of {nxt['model']} at {nxt['score'] * 100:.1f}"
        if win["ci_low"] is not None and nxt["ci_high"] is not None and nxt["ci_high"] >= win["ci_low"]:
            text += (". The lead is inside the 95% CIs: on this data the two are not clearly "
                     "different, and the pick is by the point estimate")
    skipped = [r["model"] for r in ranked if not r["eligible"]]
    if skipped:
        text += f". Over max_params ({sel.max_params:g}): {', '.join(skipped)}"
    return text + "."


# -- train -----------------------------------------------------------------------------------

def _outputs(ctx: Ctx) -> list[tuple[Path, str]]:
    from bench.train.config import load_train_config

    paths = [ctx.spec.path(p) for p in ctx.spec.train.configs]
    methods = [load_train_config(p).method for p in paths]
    return [(p, f"{ctx.spec.name}-{m}" + (f"{i + 1}" if methods.count(m) > 1 else ""))
            for i, (p, m) in enumerate(zip(paths, methods))]


def train_inputs(ctx: Ctx, state: dict) -> dict:
    from bench.train.config import load_train_config
    from bench.train.run import read_data

    winner = state["select"]["winner"]
    configs = []
    for path, output in _outputs(ctx):
        cfg = load_train_config(path)
        configs.append({"learned": {k: v for k, v in cfg.learned().items() if k not in ("base", "data")},
                        "output": output, "data_sha256": read_data(cfg, path.parent)[1]})
    return {"winner": winner, "winner_fp": model_fp(ctx, winner), "configs": configs}


def train_run(ctx: Ctx, state: dict) -> dict:
    base, trained = state["select"]["winner"], []
    for path, output in _outputs(ctx):
        plan = ctx.plan_training(path, {"base": base, "output": output})
        result = ctx.train(path, plan, verify=ctx.recompute)
        trained.append({"name": output, "fingerprint": result.fingerprint, "steps": result.steps,
                        "trained": result.trained, "run_dir": str(result.run_dir),
                        "reproduced": result.reproduced})
        if rep := result.reproduced:
            ctx.console.print(f"trained {output} again from {base} ({result.steps} steps): "
                              + ("identical weights" if rep["identical"] else
                                 f"largest weight difference {rep['max_abs_diff']:.3g} over "
                                 f"{rep['tensors']} tensors"), markup=False)
        else:
            ctx.console.print(f"{'trained' if result.trained else 'already trained'} {output} "
                              f"({result.steps} steps) from {base}", markup=False)
        base = output
    return {"base": state["select"]["winner"], "tuned": base, "models": trained}


# -- evaluate --------------------------------------------------------------------------------

def _judge_identity(ctx: Ctx) -> dict | None:
    from bench.config import APIModelSpec

    j = ctx.spec.evaluate.judge
    if j is None:
        return None
    listed = {m.name: m for m in load_models(ctx.models).models}
    judge = j.model_dump(exclude={"train"})  # its training by key, not by the config's path
    if isinstance(listed.get(j.model), APIModelSpec):
        return {"judge": judge, "entry": listed[j.model].model_dump()}
    if j.train:
        return {"judge": judge, "train_key": ctx.plan_training(ctx.spec.path(j.train)).key}
    return {"judge": judge, "weights": model_fp(ctx, j.model)}


@contextmanager
def judge_model(ctx: Ctx) -> Iterator:
    """The judge's API entry: a models.yaml one as it is, else the local model served (trained
    first when the pipeline says how) for as long as the stage runs."""
    from bench.config import APIModelSpec, check_remote_code
    from bench.serve.server import serving
    from bench.train.registry import resolve
    j = ctx.spec.evaluate.judge
    listed = {m.name: m for m in load_models(ctx.models).models} if j else {}
    if j is None or isinstance(listed.get(j.model), APIModelSpec):
        yield listed.get(j.model) if j else None
        return
    if j.train:
        ctx.train(ctx.spec.path(j.train))
    spec = resolve(j.model, ctx.models, ctx.store.path)
    check_remote_code(spec, ctx.trust_remote_code, f"pipeline {ctx.spec.name}: evaluate.judge")
    ctx.console.print(f"serving judge {j.model} with transformers serve", markup=False)
    with serving(spec, "transformers", log_dir=ctx.results / "logs") as server:
        yield APIModelSpec.model_validate(server.entry)


def with_judge(plan, judge_spec, j) -> None:
    """Add the pipeline's judge to every open task of a plan."""
    from bench.judge.config import JudgeConfig
    from bench.judge.scorer import JudgeScorer

    config = JudgeConfig(name="judge", judges=[judge_spec.name], rubric=j.rubric,
                         reference=j.reference, max_tokens=j.max_tokens)
    for task in plan.tasks:
        if getattr(task, "kind", None) == "open" and not any(hasattr(s, "bind") for s in task.scorers):
            task.scorers.append(JudgeScorer(config).bind([judge_spec]))


def evaluate_inputs(ctx: Ctx, state: dict) -> dict:
    ev, names = ctx.spec.evaluate, [state["train"]["base"], state["train"]["tuned"]]
    suites = {}
    for suite in ev.suites:
        plan = ctx.plan(suite, names, ev.limit)
        suites[plan.suite.name] = {"tasks": {t.key: t.fingerprint for t in plan.tasks},
                                   "file": ctx.spec.path(suite).read_text(encoding="utf-8")}
    return {"suites": suites, "limit": ev.limit, "judge": _judge_identity(ctx),
            "models": {n: model_fp(ctx, n) for n in names}}


def evaluate_run(ctx: Ctx, state: dict) -> dict:
    ev, base, tuned = ctx.spec.evaluate, state["train"]["base"], state["train"]["tuned"]
    out = {}
    with judge_model(ctx) as judge_spec:
        for suite in ev.suites:
            plan = ctx.plan(suite, [base, tuned], ev.limit)
            if judge_spec is not None:
                with_judge(plan, judge_spec, ev.judge)
            runs = {r.model: r.run_id for r in ctx.execute(plan)}
            out[plan.suite.name] = {"base": runs[base], "tuned": runs[tuned]}
    return {"runs": out, "base": base, "tuned": tuned}


# -- gate and report -------------------------------------------------------------------------

def _gate_suite(ctx: Ctx, state: dict) -> str:
    from bench.config import load_suite

    runs = state["evaluate"]["runs"]
    if ctx.spec.gate.suite is None:
        return next(iter(runs))
    name = load_suite(ctx.spec.path(ctx.spec.gate.suite)).name if ctx.spec.gate.suite.endswith(
        (".yaml", ".yml")) else ctx.spec.gate.suite
    if name not in runs:
        raise BenchError(f"gate.suite: '{name}' is not one of the evaluate suites ({', '.join(runs)})")
    return name


def gate_inputs(ctx: Ctx, state: dict) -> dict:
    from bench.compare.policy import load_policy

    return {"policy": load_policy(ctx.spec.path(ctx.spec.gate.policy)).model_dump(),
            "suite": _gate_suite(ctx, state), "runs": state["evaluate"]["runs"],
            "out": str(ctx.out_dir / "gate")}


def gate_run(ctx: Ctx, state: dict) -> dict:
    from bench.compare.outputs import write_gate
    from bench.compare.policy import gate, load_policy

    suite = _gate_suite(ctx, state)
    runs = state["evaluate"]["runs"][suite]
    result = gate(ctx.store, suite, runs["base"], runs["tuned"],
                  load_policy(ctx.spec.path(ctx.spec.gate.policy)))
    files = [str(p) for p in write_gate(result, ctx.out_dir / "gate")]
    for c in result["checks"]:
        ctx.console.print(f"{'pass' if c['status'] == 'pass' else 'FAIL'} {c['task']} · "
                          f"{c['metric']}: {c['reason']}", markup=False)
    return {"verdict": result["verdict"], "files": files,
            "failed": sum(c["status"] == "fail" for c in result["checks"]),
            "digest": fingerprint_of(Path(files[-1]).read_text(encoding="utf-8"))}  # gate.json


def report_inputs(ctx: Ctx, state: dict) -> dict:
    return {"select": state["select"]["ranking"], "evaluate": state["evaluate"]["runs"],
            "gate": state["gate"], "out": str(ctx.out_dir)}


def report_run(ctx: Ctx, state: dict) -> dict:
    from bench.config import load_suite
    from bench.report.before_after import before_after_data, write_before_after
    from bench.report.leaderboard import leaderboard_data
    from bench.report.render import write_leaderboard

    name = load_suite(ctx.spec.path(ctx.spec.select.suite)).name
    files = [str(write_leaderboard(leaderboard_data(ctx.store, name), ctx.out_dir / "leaderboard.html"))]
    for suite, runs in state["evaluate"]["runs"].items():
        out = ctx.out_dir / ("before_after.html" if len(state["evaluate"]["runs"]) == 1
                             else f"before_after-{suite}.html")
        files.append(str(write_before_after(
            before_after_data(ctx.store, suite, runs["base"], runs["tuned"]), out)))
    return {"files": files}


STAGES = {"select": (select_inputs, select_run), "train": (train_inputs, train_run),
          "evaluate": (evaluate_inputs, evaluate_run), "gate": (gate_inputs, gate_run),
          "report": (report_inputs, report_run)}
