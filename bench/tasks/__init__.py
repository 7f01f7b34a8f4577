"""Task registry: FewCLUE (9) and CLUE (afqmc, ocnli, c3), each in gen and ppl mode (the choice
kind), and preference pairs from a file; kinds.py says what each kind asks and how it is scored.

    load_task("bustm", "dev", "gen", data_dir)  →  Task

Specs live in fewclue.py / clue.py; spec.py turns a spec plus a data dir into a Task.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError, suggest
from bench.files import MAX_ROW_BYTES
from bench.rows import MAX_BAD_FRACTION, check
from bench.tasks import choice, open_ended, preference  # noqa: F401 - registers the kinds
from bench.tasks.base import Mode, Task
from bench.tasks.clue import SPECS as CLUE_SPECS
from bench.tasks.fewclue import SPECS as FEWCLUE_SPECS
from bench.tasks.kinds import bind_scorers
from bench.tasks.spec import TaskSpec, build_task

TASKS: dict[str, TaskSpec] = {**FEWCLUE_SPECS, **CLUE_SPECS}
FEWCLUE_TASKS: tuple[str, ...] = tuple(FEWCLUE_SPECS)
CLUE_TASKS: tuple[str, ...] = tuple(CLUE_SPECS)


def get_spec(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise BenchError(f"unknown task '{name}'{suggest(name, TASKS)}") from None


def load_task(name: str, split: str, mode: Mode, data_dir: Path, limit: int | None = None,
              max_bad_fraction: float = MAX_BAD_FRACTION, max_row_bytes: int = MAX_ROW_BYTES) -> Task:
    """A task with its samples and its kind's default scorers; exit 2 (bench/rows.py) when bad
    rows pass `max_bad_fraction`."""
    task = build_task(get_spec(name), Path(data_dir), split, mode, limit, max_row_bytes)
    check(task.rows, max_bad_fraction)
    task.scorers = bind_scorers(task, None)
    return task


__all__ = ["CLUE_TASKS", "FEWCLUE_TASKS", "TASKS", "TaskSpec", "get_spec", "load_task"]
