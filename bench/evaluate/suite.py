"""`bench run`: configs → tasks → one backend per model → store. All input is checked (configs,
data dir, every task file) before any model is loaded, so a typo costs seconds, not a model load."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from bench.config import load_models, load_suite
from bench.engines import EngineTask, build_engine_task
from bench.evaluate.runner import ModelRun, Reporter, run_model
from bench.store import Store
from bench.tasks import download, load_task
from bench.tasks.base import Task
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

    def close(self) -> None:
        self.progress.stop()


def load_tasks(suite_path: Path, data_dir: Path | None, limit: int | None):
    suite = load_suite(suite_path)
    entries = suite.resolved_tasks()
    root = resolve_data_dir(data_dir, suite.data_dir, fetch=lambda: download.ensure(
        [e.name for e in entries], sorted({e.split for e in entries})))
    tasks: list[Task | EngineTask] = []
    for entry in entries:
        if entry.engine != "bench":
            tasks.append(build_engine_task(entry.model_copy(update={"limit": limit or entry.limit}), root))
        else:
            tasks.append(load_task(entry.name, entry.split, entry.mode, root, limit=limit or entry.limit))
    return suite, root, tasks


def run_suite(
    suite_path: Path, models_path: Path, names: list[str] | None, data_dir: Path | None,
    limit: int | None, store: Store, console: Console | None = None,
) -> list[ModelRun]:
    from bench.backends import get_backend

    suite, root, tasks = load_tasks(suite_path, data_dir, limit)
    specs = load_models(models_path).select(names)
    runs = []
    for spec in specs:
        backend = get_backend(spec)
        reporter = RichReporter(console) if console else Reporter()
        try:
            runs.append(run_model(spec, backend, suite, tasks, store, reporter, str(root)))
        finally:
            if console:
                reporter.close()
    return runs
