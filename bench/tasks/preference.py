"""The preference kind: held-out pairs, scored by whether the model finds the chosen answer more
likely than the rejected one given the prompt.

Data: JSONL rows `{"prompt": str, "chosen": str, "rejected": str}` (TRL's plain preference form),
an optional `system` string. The model is asked for the log-likelihood of each answer as a
continuation of the prompt as it renders it for generation (chat template, or plain text for base
models), through Backend.loglikelihood: continuation tokens only, summed and per token.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.evaluate.manifest import fingerprint_of
from bench.files import MAX_ROW_BYTES, iter_jsonl
from bench.rows import MAX_BAD_FRACTION, RowLog, check
from bench.tasks.base import Message, Prompt, Task
from bench.tasks.kinds import bind_scorers, register
from bench.tasks.loaders import file_sha256

FIELDS = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class Pair:
    id: str  # "L<line>"
    doc: dict
    prompt: Prompt
    chosen: str
    rejected: str

    @property
    def hash(self) -> str:
        payload = json.dumps(self.doc, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _pair(sid: str, row: dict) -> Pair:
    """The row as a Pair; ValueError names what is wrong with it."""
    for key in (*FIELDS, "system"):
        value = row.get(key)
        if key == "system" and value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(f"'{key}' is missing" if value is None else
                             f"'{key}' must be a string, not {type(value).__name__}")
        if not value.strip():
            raise ValueError(f"'{key}' is empty")
    if row["chosen"] == row["rejected"]:
        raise ValueError("'chosen' equals 'rejected'")
    system = (Message("SYSTEM", row["system"]),) if row.get("system") else ()
    return Pair(sid, row, (*system, Message("HUMAN", row["prompt"])), row["chosen"], row["rejected"])


def load(name: str, path: Path, split: str, limit: int | None = None,
         max_bad_fraction: float = MAX_BAD_FRACTION, max_row_bytes: int = MAX_ROW_BYTES) -> Task:
    """Pairs from a JSONL file, bad rows skipped and counted (exit 2 past `max_bad_fraction`),
    with the kind's default scorer."""
    if not path.is_file():
        raise BenchError(f"preference task '{name}': data file '{path}' not found")
    rows = RowLog(str(path))
    samples = []
    for lineno, row in iter_jsonl(path, rows, max_row_bytes):
        try:
            samples.append(_pair(f"L{lineno}", row))
        except ValueError as exc:
            rows.bad(f"{path}:{lineno}", f"task '{name}': {exc}")
            continue
        rows.kept += 1
        if limit is not None and len(samples) >= limit:
            break
    check(rows, max_bad_fraction)
    task = Task(name=name, split=split, mode="loglik", kind="preference", samples=samples,
                spec_fingerprint=fingerprint_of("preference", 1, FIELDS),
                data_sha256=file_sha256(path), metric="preference",
                meta={"files": [str(path)]}, rows=rows)
    task.scorers = bind_scorers(task, None)
    return task


@dataclass(frozen=True)
class PreferenceScorer:
    name: str = "preference"
    metrics: tuple[str, ...] = ("accuracy", "accuracy_per_token", "margin")
    signature: str = "pref|loglik:continuation"

    @property
    def fingerprint(self) -> str:
        return fingerprint_of("preference", 1)

    def score(self, samples: list[Pair], outputs: list[dict]) -> list[dict]:
        scored = []
        for pair, out in zip(samples, outputs, strict=True):
            c, r = out["chosen"], out["rejected"]
            win = c["logprob"] > r["logprob"]
            scored.append({"values": {
                "accuracy": float(win),
                "accuracy_per_token": float(c["logprob"] / c["n_tokens"] > r["logprob"] / r["n_tokens"]),
                "margin": c["logprob"] - r["logprob"],
            }, "answer": "chosen" if win else "rejected",
                "prediction": pair.chosen if win else pair.rejected})
        return scored


@register
class PreferenceKind:
    name = "preference"
    scorers = {"preference": lambda config, task: PreferenceScorer()}
    default_scorers = ("preference",)

    def decoding(self, spec, task: Task) -> dict:
        return {"mode": "loglik", "continuation": "lm-eval"}

    def ask(self, backend, spec, task: Task, samples: list[Pair]) -> list[dict]:
        contexts = [backend.render(p.prompt, "gen") for p in samples]
        requests = [(ctx, text) for ctx, p in zip(contexts, samples) for text in (p.chosen, p.rejected)]
        results = backend.loglikelihood(requests)
        records = []
        for i, (pair, ctx) in enumerate(zip(samples, contexts, strict=True)):
            chosen, rejected = results[2 * i], results[2 * i + 1]
            records.append({"id": pair.id, "input": ctx, "target": "chosen",
                            "chosen": _kept(chosen), "rejected": _kept(rejected)})
        return records


def _kept(result: dict) -> dict:
    return {k: result[k] for k in ("logprob", "n_tokens", "token_logprobs", "is_greedy")}
