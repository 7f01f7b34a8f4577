"""The open kind: held-out questions answered freely, scored against reference answers (ROUGE,
BLEU) and by rule checks (bench/scorers/), later by a judge: every scorer is a score layer over
the same generations, so adding or changing one never generates again.

Data: JSON Lines (or a JSON array) of `{"instruction", "input"?, "system"?, "reference"}` (the
demo domain's held-out set) or `{"messages": [...ending with the user], "reference"}`; bad rows
are skipped, counted and named by file:line (bench/rows.py). Generation settings come from the
suite entry (`generation:`), override the model's for this task, and are part of every answer's
cache key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.evaluate.manifest import fingerprint_of
from bench.files import MAX_ROW_BYTES, iter_rows
from bench.rows import MAX_BAD_FRACTION, RowLog, check
from bench.tasks.base import Task
from bench.tasks.kinds import bind_scorers, register
from bench.tasks.loaders import file_sha256
from bench.train.data import sft_row

DEFAULT_GENERATION = {"max_new_tokens": 512, "temperature": 0.0, "stop": []}


@dataclass(frozen=True)
class OpenSample:
    id: str  # "L<line>"
    messages: tuple[dict, ...]  # optional system, then turns ending with the user's question
    reference: str

    @property
    def hash(self) -> str:
        raw = json.dumps([self.messages, self.reference], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _sample(record: dict, sid: str) -> OpenSample:
    reference = record.get("reference")
    if not isinstance(reference, str) or not reference.strip():
        raise ValueError("'reference' is missing or empty: each row needs a reference answer")
    if "messages" in record and isinstance(record["messages"], list):
        conversation = {**record, "messages": [*record["messages"],
                                               {"role": "assistant", "content": reference}]}
    elif "instruction" in record:
        conversation = {**record, "output": reference}
    else:
        raise ValueError("expected 'instruction' (with 'input' and 'reference') or 'messages' "
                         f"(with 'reference'); got {', '.join(map(repr, record))}")
    conversation.pop("reference")
    row = sft_row(conversation, sid)
    return OpenSample(sid, row.messages[:-1], reference)


def read_open(path: Path, max_row_bytes: int = MAX_ROW_BYTES,
              limit: int | None = None) -> tuple[list[OpenSample], RowLog]:
    rows, samples = RowLog(str(path)), []
    for lineno, record in iter_rows(path, rows, max_row_bytes):
        try:
            samples.append(_sample(record, f"L{lineno}"))
        except ValueError as exc:
            rows.bad(f"{path}:{lineno}", str(exc))
            continue
        rows.kept += 1
        if limit is not None and len(samples) >= limit:
            break
    return samples, rows


def load(name: str, path: Path, split: str, generation: dict | None = None,
         limit: int | None = None, max_bad_fraction: float = MAX_BAD_FRACTION,
         max_row_bytes: int = MAX_ROW_BYTES) -> Task:
    """Questions and references from a file, with the task's generation settings."""
    if not path.is_file():
        raise BenchError(f"open task '{name}': data file '{path}' not found")
    samples, rows = read_open(path, max_row_bytes, limit)
    check(rows, max_bad_fraction)
    settings = {**DEFAULT_GENERATION, **(generation or {})}
    task = Task(name=name, split=split, mode="gen", kind="open", samples=samples,
                spec_fingerprint=fingerprint_of("open", 1), data_sha256=file_sha256(path),
                metric="rouge-l", meta={"files": [str(path)], "generation": settings}, rows=rows)
    task.scorers = bind_scorers(task, None)
    return task


def _cut(text: str, stops: list[str]) -> tuple[str, str | None]:
    """The answer up to the first stop string, and the string it stopped at."""
    hits = [(text.find(s), s) for s in stops if s in text]
    if not hits:
        return text, None
    at, stop = min(hits)
    return text[:at], stop


def _scorer(config, task: Task):
    from bench.scorers import build

    return build(config)


def _judge(config, task: Task):
    from bench.judge.scorer import JudgeScorer

    return JudgeScorer(config)  # its judges are bound when the run is planned (models.yaml)


@register
class OpenKind:
    name = "open"
    scorers = {"rouge": _scorer, "bleu": _scorer, "rules": _scorer, "judge": _judge}
    default_scorers = ("rouge",)

    def decoding(self, spec, task: Task) -> dict:
        gen = task.meta["generation"]
        return {"mode": "gen", "chat": True, "max_new_tokens": gen["max_new_tokens"],
                "temperature": gen["temperature"], "stop": list(gen["stop"])}

    def ask(self, backend, spec, task: Task, samples: list[OpenSample]) -> list[dict]:
        gen = task.meta["generation"]
        stops = list(gen["stop"])
        stop = (lambda text: any(s in text for s in stops)) if stops else None
        texts = backend.generate_chat([list(s.messages) for s in samples], gen["max_new_tokens"],
                                      stop, gen["temperature"])
        records = []
        for sample, raw in zip(samples, texts, strict=True):
            answer, hit = _cut(raw, stops)
            record = {"id": sample.id, "input": backend.render_chat(list(sample.messages)),
                      "target": sample.reference, "prediction": answer, "answer": answer}
            if hit is not None:
                record["prediction_cut"] = f"stop string {hit!r}: the answer ends before it"
            records.append(record)
        return records


def answer_chars(records: list[dict]) -> float | None:
    """Mean answer length in characters (stripped), for reports."""
    lengths = [len((r.get("prediction") or "").strip()) for r in records]
    return sum(lengths) / len(lengths) if lengths else None
