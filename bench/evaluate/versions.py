"""Answers stored under another backend version: found, said, and reused only when asked.

An output's key holds the backend's version string (`hf/2 transformers/5.24.0 torch/2.13.0+cpu`),
so a new transformers makes every key new and a rerun recomputes everything. That is the safe
default, but it must not be silent: before computing, the runner looks for the same model, task,
samples and decoding under each backend version this model's earlier runs used, and says how
many answers exist there and what changed. With `--reuse-across-versions` those answers are taken
as they are: the run links the old records (their keys, so their scores come along) and records
that it did, and every page that shows the run says so. Nothing is ever filed under the new key.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.evaluate.manifest import cache_key
from bench.tasks.kinds import get_kind

FLAG = "--reuse-across-versions"


@dataclass
class Elsewhere:
    """Stored answers for some of a task's missing samples, under another backend version."""

    version: str  # the backend version they were computed under
    current: str  # this environment's
    keys: dict[int, str]  # sample index -> the key of its answer under `version`
    records: dict[str, dict]

    def change(self) -> tuple[str, str]:
        """What differs between the two version strings, each side in words."""
        old, new = _parts(self.version), _parts(self.current)
        names = [n for n in dict.fromkeys([*old, *new]) if old.get(n) != new.get(n)]
        return (", ".join(f"{n} {old.get(n, '(none)')}" for n in names),
                ", ".join(f"{n} {new.get(n, '(none)')}" for n in names))

    def note(self, task: str, reuse: bool) -> str:
        old, new = self.change()
        n = f"{len(self.keys):,} answer{'s' if len(self.keys) != 1 else ''}"
        if reuse:
            return (f"{task}: reusing {n} computed with {old} (this environment has {new}); "
                    f"{FLAG}: the run is marked as such")
        return (f"{task}: {n} exist for {old}; this environment has {new}: recomputing. "
                f"{FLAG} accepts them, marked as such")

    def summary(self, reuse: bool) -> dict:
        """What the run records about it (per task)."""
        return {"backend_version": self.version, "n": len(self.keys), "reused": reuse}


def _parts(version: str) -> dict[str, str]:
    """`hf/2 transformers/5.24.0 torch/2.13.0+cpu` -> {hf: 2, transformers: 5.24.0, torch: ...}."""
    parts = {}
    for token in version.split():
        name, _, value = token.partition("/")
        parts[name] = value
    return parts


def stored_elsewhere(store, backend, spec, task, missing: list[int]) -> Elsewhere | None:
    """The other backend version (of this model's runs) holding the most of the `missing` samples'
    answers, if any does."""
    current = backend.info["backend_version"]
    decoding = get_kind(task.kind).decoding(spec, task)
    best = None
    for version in store.backend_versions(backend.fingerprint):
        if version == current:
            continue
        keys = {i: cache_key(backend.fingerprint, task.fingerprint, task.samples[i].hash, decoding,
                             version) for i in missing}
        records = store.get_records(keys.values())
        found = {i: k for i, k in keys.items() if k in records}
        if found and (best is None or len(found) > len(best.keys)):
            best = Elsewhere(version, current, found, records)
    return best
