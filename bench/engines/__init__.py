"""Other engines inside bench: lm-evaluation-harness and OpenCompass.

An engine task runs a whole task its own way and hands back per-sample records and metrics; the
runner stores them like native ones (content-addressed, so an unchanged rerun makes no call), and
they show on the leaderboard beside native tasks.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.config import ModelSpec, TaskEntry
from bench.errors import BenchError, suggest


@dataclass
class EngineResult:
    records: list[dict]
    """Per sample: id, input, target, prediction, answer, score (0/1), and engine extras
    (e.g. logprobs). `id` must be stable across runs of the same task."""
    metrics: dict = field(default_factory=dict)
    """The engine's own metrics {name: {"value", "n", "ci_low"?, "ci_high"?}}, kept beside ours."""
    timings: dict = field(default_factory=dict)
    """wall_s, and tokens_pushed / forward_calls where the engine can tell."""


class EngineTask(Protocol):
    key: str  # unique within a suite, e.g. "lm-eval:bench_bustm" or "oc:FewCLUE_bustm_gen"
    mode: str
    signature: str
    fingerprint: str  # engine + version + task config + data: equal fingerprints, equal task
    engine_version: str
    meta: dict

    def decoding(self, spec: ModelSpec) -> dict:
        """What of the model spec changes this engine's output (part of the cache key)."""
        ...

    def run(self, spec: ModelSpec, backend: Any) -> EngineResult: ...


# engine name → module with build(entry: TaskEntry, data_dir: Path) -> EngineTask
_ENGINES = {"lm-eval": "bench.engines.lm_eval", "opencompass": "bench.engines.opencompass"}


def build_engine_task(entry: TaskEntry, data_dir: Path) -> EngineTask:
    if entry.engine not in _ENGINES:
        raise BenchError(f"unknown engine '{entry.engine}'{suggest(entry.engine, _ENGINES)}")
    module = importlib.import_module(_ENGINES[entry.engine])
    return module.build(entry, data_dir)


@dataclass(frozen=True)
class EngineScore:
    """An engine task's own per-sample score, filed in the score layer like any scorer's."""

    signature: str
    name: str = "engine"
    metrics: tuple[str, ...] = ("accuracy",)

    @property
    def fingerprint(self) -> str:  # the engine and its version are in the output's key
        from bench.evaluate.manifest import fingerprint_of

        return fingerprint_of("engine", 1)

    def score(self, samples: list, outputs: list[dict]) -> list[dict]:
        return [{"values": {"accuracy": float(o["score"])}, "answer": o.get("answer")}
                for o in outputs]
