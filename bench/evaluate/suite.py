"""`bench run`: configs → tasks → one backend per model → store. All input is checked (configs,
data dir, every task file) before any model is loaded, so a typo costs seconds, not a model load."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from bench.config import (
    APIModelSpec,
    Executor,
    ModelSpec,
    SuiteSpec,
    TaskEntry,
    load_models,
    load_suite,
)
from bench.engines import EngineTask, build_engine_task
from bench.errors import BenchError, Interrupted
from bench.evaluate.runner import ModelRun, Reporter, run_model
from bench.logs import log_path, third_party_output
from bench.store import Store
from bench.tasks import download, get_spec, load_task, open_ended, preference
from bench.tasks.base import Task
from bench.tasks.kinds import bind_scorers
from bench.tasks.loaders import resolve_data_dir


class RichReporter(Reporter):
    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"), TimeRemainingColumn(), console=console,
        )
        self.progress.start()
        self.current = None

    def start(self, label: str, total: int, done: int) -> None:
        note = f"({done} cached)" if done else ""
        self.current = self.progress.add_task(label, total=total, completed=done, note=note)

    def advance(self, n: int) -> None:
        self.progress.advance(self.current, n)

    def finish(self) -> None:
        pass

    def note(self, text: str) -> None:
        self.progress.console.print(f"[yellow]note:[/] {escape(text)}", soft_wrap=True)

    def close(self) -> None:
        self.progress.stop()


def load_tasks(suite_path: Path, data_dir: Path | None, limit: int | None):
    suite = load_suite(suite_path)
    entries = suite.resolved_tasks()
    clue = [e for e in entries if e.engine == "bench" and e.kind == "choice"]
    root = resolve_data_dir(data_dir, suite.data_dir, fetch=lambda: download.ensure(
        [e.name for e in clue], sorted({e.split for e in clue})))
    tasks = [_load_entry(suite, i, entry.model_copy(update={"limit": limit or entry.limit}), root)
             for i, entry in enumerate(entries)]
    return suite, root, tasks


def _load_entry(suite: SuiteSpec, i: int, entry: TaskEntry, root: Path) -> Task | EngineTask:
    """One suite entry as a task; a mistake in the entry itself names its line."""
    try:
        if entry.engine != "bench" and (entry.scorers or entry.kind != "choice"):
            raise BenchError(f"task '{entry.name}': an {entry.engine} task is scored by its "
                             "engine; drop `kind` and `scorers` from it")
        if entry.engine != "bench":
            return build_engine_task(entry, root)
        if (entry.kind != "choice") != bool(entry.data):
            raise BenchError(f"task '{entry.name}': a {entry.kind} task needs `data:` (a file of "
                             "rows), and only preference and open tasks take it"
                             if entry.kind != "choice" else f"task '{entry.name}': `data` is for "
                             "preference and open tasks; set `kind:` or drop `data`")
        if entry.dataset and entry.kind != "preference":
            raise BenchError(f"task '{entry.name}': `dataset` names a dataset_info.json entry "
                             "of a preference task's `data`")
        if entry.generation and entry.kind != "open":
            raise BenchError(f"task '{entry.name}': `generation` is for open tasks; a "
                             f"{entry.kind} task takes the model's (models.yaml `generation`)")
        if entry.kind == "choice":
            get_spec(entry.name)
    except BenchError as exc:
        raise BenchError(f"{suite.where_task(i)}: {exc}") from None
    if entry.kind == "choice":
        task = load_task(entry.name, entry.split, entry.mode, root, entry.limit,
                         suite.max_bad_fraction, suite.max_row_bytes)
    else:
        path = _data_path(suite, entry)
        try:
            if entry.kind == "open":
                task = open_ended.load(entry.name, path, entry.split,
                                       entry.generation.model_dump() if entry.generation else None,
                                       entry.limit, suite.max_bad_fraction, suite.max_row_bytes)
            else:
                task = preference.load(entry.name, path, entry.split, entry.limit,
                                       suite.max_bad_fraction, suite.max_row_bytes, entry.dataset)
        except BenchError as exc:  # which suite, which key, which file, before the rows
            raise BenchError(f"{suite.where_task(i)}: task '{entry.name}' ({entry.kind}), data: "
                             f"{entry.data} (resolved: {path.resolve()}):\n{exc}") from None
    if entry.scorers:
        try:
            task.scorers = bind_scorers(task, entry.scorers)
        except BenchError as exc:
            raise BenchError(f"{suite.where_task(i)}: {exc}") from None
    return task


def _data_path(suite: SuiteSpec, entry: TaskEntry) -> Path:
    """A task's `data`, relative to the suite file."""
    base = suite._source.path.parent if suite._source else Path.cwd()
    return base / Path(entry.data).expanduser()


@dataclass
class Plan:
    """Everything `bench run` needs, checked: nothing here has loaded a model or opened the store."""

    suite: SuiteSpec
    data_dir: Path
    tasks: list[Task | EngineTask]
    models: list[ModelSpec]
    generate: bool = True  # False (bench judge): score stored answers, never ask the model
    recompute: bool = False  # ask the model again despite stored answers, and compare with them
    reuse: bool = False  # take answers stored under another backend version (marked as such)
    executor: Executor = Executor()  # where the model calls run (the suite's, or the command's)


def plan_run(suite_path: Path, models_path: Path, names: list[str] | None, data_dir: Path | None,
             limit: int | None, trust_remote_code: bool = False, console: Console | None = None,
             trained: dict[str, ModelSpec] | None = None, judges: list[str] | None = None,
             generate: bool = True, executor: dict | None = None) -> Plan:
    """Check all input (configs, data dir, every task file, model paths, the remote-code opt-in)
    before anything loads, so a mistake costs seconds and leaves nothing behind. `judges`
    replaces the judges of every judge scorer; without `generate` only judged tasks are kept;
    `executor` overrides keys of the suite's `executor`."""
    suite, root, tasks = load_tasks(suite_path, data_dir, limit)
    models_file = load_models(models_path)
    specs = models_file.select(names, trust_remote_code, trained)
    if not generate:
        tasks = [t for t in tasks if any(hasattr(s, "bind") for s in getattr(t, "scorers", []))]
        if not tasks:
            raise BenchError(f"{suite_path}: no task has a judge scorer; add one (README, "
                             "The LLM judge) or use `bench run`")
    _bind_judges(tasks, models_file, judges)
    for spec in specs:
        _check_model(spec, tasks)
    if console:
        for task in tasks:
            for line in task.rows.lines() if getattr(task, "rows", None) else []:
                console.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True)
        for spec in specs:
            if spec.trust_remote_code:
                console.print(f"[yellow]warning:[/] model '{escape(spec.name)}' runs the Python code "
                              f"in {escape(spec.path)} (trust_remote_code, opted in)", soft_wrap=True)
    where = Executor.model_validate(suite.executor.model_dump() | (executor or {}))
    return Plan(suite, root, tasks, specs, generate, executor=where)


def _bind_judges(tasks: list[Task | EngineTask], models_file, judges: list[str] | None) -> None:
    """Judge scorers get their judges' models.yaml entries (API models only); `judges` replaces
    the suite's."""
    for task in tasks:
        for i, scorer in enumerate(getattr(task, "scorers", [])):
            if not hasattr(scorer, "bind"):
                continue
            if judges:
                scorer = replace(scorer, config=scorer.config.model_copy(update={"judges": judges}))
            try:
                specs = [models_file.judge(name) for name in scorer.config.judges]
            except BenchError as exc:
                raise BenchError(f"task {task.key}: {exc}") from None
            task.scorers[i] = scorer.bind(specs)


def _check_model(spec, tasks: list[Task | EngineTask]) -> None:
    """What a model cannot run is refused before anything starts, naming what to do."""
    if not isinstance(spec, APIModelSpec):
        for task in tasks:
            if isinstance(task, Task) and task.kind == "open" and \
                    task.meta["generation"]["temperature"] > 0:
                raise BenchError(f"task {task.key}: temperature > 0, but model '{spec.name}' "
                                 "(backend: hf) decodes greedily; use temperature: 0, or serve "
                                 "it (bench serve) and score it through backend: openai")
        return
    for task in tasks:
        if not isinstance(task, Task):
            raise BenchError(f"model '{spec.name}' (backend: openai): task {task.key} runs in "
                             f"{task.engine_version.split('/')[0]}, which loads weights itself; "
                             "run it with a backend: hf entry, or use engine: bench")
        if (task.mode == "ppl" or task.kind == "preference") and (p := spec.logprob_problem()):
            raise BenchError(f"task {task.key} ({task.kind}, {task.mode}): {p}")


def execute(plan: Plan, store: Store, console: Console | None = None,
            log_file: Path | None = None) -> list[ModelRun]:
    """Run every model of the plan; with `log_file`, library output goes there, not the terminal.
    With `executor: ray` the local models' calls run on a Ray cluster (bench/scale/ray_pool.py):
    every model's missing shards are sent first, then each model's run commits its own."""
    remote = plan.executor.kind == "ray" and plan.generate  # bench judge never asks the models
    pool = _ray_pool(plan, store, log_file is None) if remote else None
    runs: list[ModelRun] = []
    try:
        for spec in plan.models:
            backend = pool.backends[spec.name] if pool else _load(spec, runs, store)
            reporter = RichReporter(console) if console else Reporter()
            try:
                runs.append(run_model(spec, backend, plan.suite, plan.tasks, store, reporter,
                                      str(plan.data_dir), log_file, plan.generate, plan.recompute,
                                      pool.asker if pool else None,  # an API model asks from here
                                      pool.describe() if pool else None, plan.reuse))
            finally:
                if console:
                    reporter.close()
                if pool:
                    pool.release(spec.name)
    finally:
        if pool:
            pool.close()
    return runs


def _load(spec: ModelSpec, runs: list, store: Store):
    from bench.backends import get_backend

    try:
        return get_backend(spec)
    except Interrupted as exc:
        raise Interrupted(exc.signum, f"while loading model '{spec.name}'; the {len(runs)} "
                          f"finished model runs are kept in {store.path}") from None


def _ray_pool(plan: Plan, store: Store, verbose: bool):
    """The Ray pool, with every local model's missing shards already sent (an API model asks
    from here, as in a local run: its calls are requests, not compute)."""
    from bench.scale.ray_pool import RayPool

    pool = RayPool(plan.executor, log_to_driver=verbose)
    try:
        for spec in plan.models:
            backend = pool.backends[spec.name] = _load(spec, [], store)  # the tokenizer only
            if not getattr(backend, "parallel", None):
                pool.submit(spec, backend, plan.tasks, store, plan.recompute, plan.reuse)
    except BaseException:
        pool.close()
        raise
    return pool


def run_suite(
    suite_path: Path, models_path: Path, names: list[str] | None, data_dir: Path | None,
    limit: int | None, store: Store | Callable[[], Store], console: Console | None = None,
    trust_remote_code: bool = False, verbose: bool = True,
    trained: dict[str, ModelSpec] | None = None, judges: list[str] | None = None,
    generate: bool = True, executor: dict | None = None, reuse: bool = False,
) -> list[ModelRun]:
    """Plan, then execute. `store` may be a function that opens it, called only once the input
    has passed every check. Without `verbose`, library output goes to results/logs/. `reuse`:
    answers stored under another backend version are taken (--reuse-across-versions)."""
    plan = plan_run(suite_path, models_path, names, data_dir, limit, trust_remote_code, console,
                    trained, judges, generate, executor)
    plan.reuse = reuse
    store = store if isinstance(store, Store) else store()
    with third_party_output(log_path(store.path.parent), verbose, console) as log:
        runs = execute(plan, store, console, log)
    if log and log.is_file() and log.stat().st_size and console:
        console.print(f"library messages (warnings, progress): {log}", soft_wrap=True, markup=False)
    return runs
