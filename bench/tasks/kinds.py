"""Task kinds: what a task asks the model, and the scorers that turn its answers into numbers.

    kind        asks the model                                    scorers (default first)
    choice      candidate log-likelihoods (ppl mode), or a        accuracy
                generation (gen mode): FewCLUE/CLUE
    preference  log-likelihoods of two continuations of one       preference
                prompt (chosen, rejected)

A kind is a small object registered by name; a suite entry names a task of any kind (`kind:`,
default choice) and, optionally, its scorers. The runner asks the model only for samples whose
output the store lacks (`Kind.ask`), and each scorer only for outputs it has not scored
(`Scorer.score`): outputs and scores are separate records (bench/store/db.py), so a new scorer
never asks the model again. README, "Adding a task kind or a scorer", walks through one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from bench.errors import BenchError, suggest


class Scorer(Protocol):
    name: str  # unique within a task; the store files its scores under it
    metrics: tuple[str, ...]  # the value names `score` returns, the task's headline first
    fingerprint: str  # what decides its numbers (name, version, settings): part of a score's key
    signature: str  # the metric signature reports compare runs on

    def score(self, samples: Sequence[Any], outputs: list[dict]) -> list[dict]:
        """Per sample: {"values": {metric: float}, ...details shown beside the output}."""
        ...


class Kind(Protocol):
    name: str
    scorers: dict[str, Callable[[Any, Any], Scorer]]  # config name -> (config, task) -> Scorer
    default_scorers: tuple[str, ...]

    def decoding(self, spec: Any, task: Any) -> dict:
        """What decides an output besides model, task and sample: part of its cache key."""
        ...

    def ask(self, backend: Any, spec: Any, task: Any, samples: list) -> list[dict]:
        """The model call: one output record per sample (id, input, target, and the answer)."""
        ...


KINDS: dict[str, Kind] = {}


def register(cls: type) -> type:
    KINDS[cls.name] = cls()
    return cls


def get_kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise BenchError(f"unknown task kind '{name}'{suggest(name, KINDS)}") from None


def bind_scorers(task: Any, configs: list | None) -> list[Scorer]:
    """The task's scorers from suite configs (the kind's defaults without any), checked: each
    one suits the kind, and scorer and metric names are unique within the task."""
    from bench.config import SCORER_CONFIG

    kind = get_kind(task.kind)
    configs = configs or [SCORER_CONFIG.validate_python({"name": n}) for n in kind.default_scorers]
    scorers, metrics = [], set()
    for config in configs:
        name = config.name
        if name not in kind.scorers:
            raise BenchError(f"task '{task.name}' ({kind.name}) has no scorer '{name}'; "
                             f"{kind.name} tasks take: {', '.join(kind.scorers)}")
        scorer = kind.scorers[name](config, task)
        if scorer.name in {s.name for s in scorers} or metrics & set(scorer.metrics):
            raise BenchError(f"task '{task.name}': scorer '{scorer.name}' is listed twice or "
                             "repeats a metric of another scorer; keep one")
        scorers.append(scorer)
        metrics |= set(scorer.metrics)
    return scorers
