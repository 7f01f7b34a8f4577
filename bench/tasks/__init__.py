"""Task registry: FewCLUE (9) and CLUE (afqmc, ocnli, c3), each in gen and ppl mode.

    load_task("bustm", "dev", "gen", data_dir)  →  Task

Specs live in fewclue.py / clue.py; spec.py turns a spec plus a data dir into a Task.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError, suggest
from bench.tasks.base import Mode, Task
from bench.tasks.clue import SPECS as CLUE_SPECS
from bench.tasks.fewclue import SPECS as FEWCLUE_SPECS
from bench.tasks.spec import TaskSpec, build_task

TASKS: dict[str, TaskSpec] = {**FEWCLUE_SPECS, **CLUE_SPECS}
FEWCLUE_TASKS: tuple[str, ...] = tuple(FEWCLUE_SPECS)
CLUE_TASKS: tuple[str, ...] = tuple(CLUE_SPECS)


def get_spec(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise BenchError(f"unknown task '{name}'{suggest(name, TASKS)}") from None


def load_task(name: str, split: str, mode: Mode, data_dir: Path, limit: int | None = None) -> Task:
    return build_task(get_spec(name), Path(data_dir), split, mode, limit=limit)


__all__ = ["CLUE_TASKS", "FEWCLUE_TASKS", "TASKS", "TaskSpec", "get_spec", "load_task"]
