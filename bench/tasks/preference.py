"""The preference kind: held-out pairs, scored by whether the model finds the chosen answer more
likely than the rejected one given the prompt.

Data: any preference format bench/train/data.py reads (TRL's prompt/chosen/rejected, plain or
conversational; LLaMA-Factory's ranking rows, alpaca or sharegpt), or an entry of a LLaMA-Factory
dataset_info.json. The prompt is rendered as the model is asked to answer it (its chat template
with the generation prompt; a base model gets the turns one per line), and each answer is scored
as a continuation of it through Backend.loglikelihood (lm-eval's contract): continuation tokens
only, summed and per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.evaluate.manifest import fingerprint_of
from bench.files import MAX_ROW_BYTES
from bench.rows import MAX_BAD_FRACTION, check
from bench.tasks.base import Task
from bench.tasks.kinds import bind_scorers, register
from bench.tasks.loaders import file_sha256
from bench.train.data import PreferenceRow, read_preference
from bench.train.dataset_info import load_dataset_info, read_source


def load(name: str, path: Path, split: str, limit: int | None = None,
         max_bad_fraction: float = MAX_BAD_FRACTION, max_row_bytes: int = MAX_ROW_BYTES,
         dataset: str | None = None) -> Task:
    """Pairs from a file (or, with `dataset`, that entry of the dataset_info.json at `path`), bad
    rows skipped and counted (exit 2 past `max_bad_fraction`), with the kind's default scorer."""
    if not path.is_file():
        raise BenchError(f"preference task '{name}': data file '{path}' not found")
    if dataset:
        source = load_dataset_info(path, dataset)
        if source.kind != "preference":
            raise BenchError(f"{path}: dataset '{dataset}' is not a ranking (preference) dataset")
        samples, rows = read_source(source, max_row_bytes=max_row_bytes, limit=limit)
        path, settings = source.path, [source.fmt, source.columns, source.tags]
    else:
        samples, rows = read_preference(path, max_row_bytes=max_row_bytes, limit=limit)
        settings = []
    check(rows, max_bad_fraction)
    task = Task(name=name, split=split, mode="loglik", kind="preference", samples=samples,
                spec_fingerprint=fingerprint_of("preference", 1, settings),
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

    def score(self, samples: list[PreferenceRow], outputs: list[dict]) -> list[dict]:
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

    def ask(self, backend, spec, task: Task, samples: list[PreferenceRow]) -> list[dict]:
        contexts = [backend.render_chat(list(p.prompt)) for p in samples]
        requests = [(ctx, text) for ctx, p in zip(contexts, samples) for text in (p.chosen, p.rejected)]
        results = backend.loglikelihood(requests)
        return [{"id": pair.id, "input": ctx, "target": "chosen",
                 "chosen": _kept(results[2 * i]), "rejected": _kept(results[2 * i + 1])}
                for i, (pair, ctx) in enumerate(zip(samples, contexts, strict=True))]


def _kept(result: dict) -> dict:
    return {k: result[k] for k in ("logprob", "n_tokens", "token_logprobs", "is_greedy")}
