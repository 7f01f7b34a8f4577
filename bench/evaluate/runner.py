"""Score tasks with a backend, through the cache.

For each (model, task): compute every sample's cache key, take what the store already knows, score
the rest in chunks (each chunk committed before the next starts), then compute metrics over all
samples. Nothing already known is computed again; a killed run loses at most one chunk.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.backends.base import Backend, oc_batched_ce
from bench.config import ModelSpec, SuiteSpec
from bench.engines import EngineTask
from bench.errors import BenchError, Interrupted
from bench.evaluate.manifest import cache_key, environment
from bench.metrics.stats import accuracy, suite_average
from bench.store import SCHEMA_VERSION, Store
from bench.tasks import postprocess
from bench.tasks.base import Sample, Task

CHUNK = int(os.environ.get("BENCH_CHUNK_SIZE", "32"))  # samples committed together


class Reporter:
    """Progress hooks; the CLI passes a rich one, tests the silent default."""

    def start(self, label: str, total: int, done: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def finish(self) -> None: ...


@dataclass
class TaskResult:
    task: str
    metrics: dict
    timings: dict
    rows: dict | None = None  # RowLog.summary(): rows kept, bad (skipped) and dropped


@dataclass
class ModelRun:
    model: str
    run_id: str
    tasks: list[TaskResult] = field(default_factory=list)
    average: dict | None = None
    model_calls: int = 0


def decoding_of(spec: ModelSpec, task: Task) -> dict:
    """What decides a sample's output besides model, task and sample: part of its cache key."""
    if task.mode == "ppl":
        return {"mode": "ppl"}
    return {"mode": "gen", "greedy": True, "max_new_tokens": spec.generation.max_new_tokens,
            "early_stop": spec.generation.early_stop}


def _score_gen(backend: Backend, spec: ModelSpec, task: Task, chunk: list[Sample]) -> list[dict]:
    name = task.meta.get("postprocess", "first_capital")
    post = postprocess.get(name)
    stop: Callable[[str], bool] | None = None
    if spec.generation.early_stop:
        stop = lambda text: postprocess.decided(name, text)  # noqa: E731 - answer is fixed
    outputs = backend.generate(
        [s.gen_prompt for s in chunk], spec.generation.max_new_tokens, stop
    )
    records = []
    for sample, raw in zip(chunk, outputs, strict=True):
        answer = post(raw)
        target = sample.letters[sample.target]
        record = {
            "id": sample.id, "input": backend.render(sample.gen_prompt, "gen"), "target": target,
            "prediction": raw, "answer": answer, "score": float(answer == target),
        }
        if stop is not None and stop(raw):  # decoding stopped here: not the model's whole answer
            record["prediction_cut"] = "early stop: decoding ended once the answer was decided"
        records.append(record)
    return records


def _score_ppl(backend: Backend, task: Task, chunk: list[Sample]) -> list[dict]:
    scored = backend.score_candidates([list(s.ppl_prompts) for s in chunk])
    records = []
    for sample, cands in zip(chunk, scored, strict=True):
        ces = [c["ce"] for c in cands]
        best = ces.index(min(ces))  # OpenCompass: first minimum wins ties
        target = sample.letters[sample.target]
        records.append({
            "id": sample.id, "input": backend.render(sample.ppl_prompts[sample.target], "ppl"),
            "target": target, "prediction": sample.letters[best], "answer": sample.letters[best],
            "score": float(best == sample.target), "logprobs": cands,
        })
    return records


def _add_cost(records: list[dict], wall: float, tokens: int) -> None:
    """Each record carries its share of the compute that produced it, so reports show what a
    result cost even when a later run read it from the cache."""
    for r in records:
        r["cost"] = {"wall_s": wall / len(records), "tokens_pushed": tokens / len(records)}


def oc_batch(task: Task, ppl_batch: int | None) -> int | None:
    """The OpenCompass batch size this task's values reproduce (suite `ppl_compat`: ppl only)."""
    return ppl_batch if task.mode == "ppl" else None


def signature_of(task: Task, ppl_batch: int | None) -> str:
    """The task's metric signature; OpenCompass-batched ppl values are never compared with
    batch-invariant ones."""
    batch = oc_batch(task, ppl_batch)
    return task.signature + (f"|oc-batch:{batch}" if batch else "")


def _oc_batched(backend: Backend, task: Task, store: Store, run_id: str, records: list[dict],
                batch_size: int) -> list[dict]:
    """The task's ppl records as OpenCompass scores them at `batch_size` (suite `ppl_compat`).
    Such a value depends on its batch neighbours, so its key holds the batch size, the item's
    position and the number of items (the data itself is in the task fingerprint)."""
    model_fp, backend_id, n = backend.fingerprint, backend.info["backend_version"], len(task.samples)
    keys = {s.id: cache_key(model_fp, task.fingerprint, s.hash, {
        "mode": "ppl", "opencompass_batch_size": batch_size, "position": i, "n_items": n},
        backend_id) for i, s in enumerate(task.samples)}
    known = store.get_records(keys.values())
    if len(known) == n:
        store.link_items(run_id, task.key, [(s.id, keys[s.id]) for s in task.samples])
        return [known[keys[s.id]] for s in task.samples]
    pad_nll = getattr(backend, "oc_pad_nll", None)
    if pad_nll is None:
        raise BenchError(f"ppl_compat: backend '{backend.info.get('backend')}' cannot reproduce "
                         "OpenCompass's batched values; drop ppl_compat from the suite")
    ces = oc_batched_ce([r["logprobs"] for r in records], batch_size, pad_nll)
    rows = []
    for s, r, ce in zip(task.samples, records, ces, strict=True):
        best = ce.index(min(ce))
        rows.append((s.id, keys[s.id], model_fp, task.fingerprint, s.hash, {
            **r, "prediction": s.letters[best], "answer": s.letters[best],
            "score": float(best == s.target), "opencompass_batch_size": batch_size,
            "logprobs": [{**c, "ce": v, "ce_batch_size_1": c["ce"]} for c, v in zip(r["logprobs"], ce)],
        }))
    store.put_records(run_id, task.key, rows)
    return [row[-1] for row in rows]


def evaluate_task(
    backend: Backend, spec: ModelSpec, task: Task, store: Store, run_id: str,
    reporter: Reporter, seed: int, ppl_batch: int | None = None,
) -> TaskResult:
    model_fp = backend.fingerprint
    decoding = decoding_of(spec, task)
    backend_id = backend.info["backend_version"]
    keys = {
        s.id: cache_key(model_fp, task.fingerprint, s.hash, decoding, backend_id)
        for s in task.samples
    }
    known = store.get_records(keys.values())
    store.link_items(run_id, task.key, [(s.id, keys[s.id]) for s in task.samples if keys[s.id] in known])
    todo = [s for s in task.samples if keys[s.id] not in known]

    reporter.start(f"{spec.name} · {task.key} ({task.mode})", len(task.samples), len(task.samples) - len(todo))
    before = dict(backend.stats) if todo else {}
    t0 = time.perf_counter()
    for i in range(0, len(todo), CHUNK):
        chunk = todo[i : i + CHUNK]
        c0, pushed0 = time.perf_counter(), backend.stats.get("tokens_pushed", 0)
        if task.mode == "gen":
            records = _score_gen(backend, spec, task, chunk)
        else:
            records = _score_ppl(backend, task, chunk)
        _add_cost(records, time.perf_counter() - c0, backend.stats.get("tokens_pushed", 0) - pushed0)
        rows = [
            (s.id, keys[s.id], model_fp, task.fingerprint, s.hash, r)
            for s, r in zip(chunk, records, strict=True)
        ]
        store.put_records(run_id, task.key, rows)
        for s, r in zip(chunk, records, strict=True):
            known[keys[s.id]] = r
        reporter.advance(len(chunk))
    wall = time.perf_counter() - t0
    reporter.finish()

    records = [known[keys[s.id]] for s in task.samples]
    signature = signature_of(task, ppl_batch)
    if oc_batch(task, ppl_batch):
        records = _oc_batched(backend, task, store, run_id, records, ppl_batch)
    scores = [r["score"] for r in records]
    metrics = {"accuracy": accuracy(scores, seed=seed)}
    after = backend.stats if todo else {}
    timings = {
        "wall_s": wall, "computed": len(todo), "cached": len(task.samples) - len(todo),
        **{k: after.get(k, 0) - before.get(k, 0) for k in ("tokens_pushed", "tokens_naive", "forward_calls")},
    }
    store.finish_task(run_id, task.key, task.fingerprint, signature, metrics, timings)
    rows = task.rows.summary() if task.rows else None
    return TaskResult(task.key, metrics, timings | {"scores": scores}, rows)


def evaluate_engine_task(
    backend: Backend, spec: ModelSpec, task: EngineTask, store: Store, run_id: str,
    reporter: Reporter, seed: int,
) -> TaskResult:
    """A task another engine runs whole. Its records go under per-sample keys, and an index
    record under the task's key says which; with that index present, nothing runs."""
    model_fp = backend.fingerprint
    decoding = task.decoding(spec)
    index_key = cache_key(model_fp, task.fingerprint, "*index*", decoding, task.engine_version)
    index = store.get_records([index_key]).get(index_key)
    reporter.start(f"{spec.name} · {task.key} ({task.mode})", 1, 1 if index else 0)
    computed, timings = 0, {"wall_s": 0.0, "tokens_pushed": 0, "tokens_naive": 0, "forward_calls": 0}
    if index is None:
        t0 = time.perf_counter()
        result = task.run(spec, backend)
        wall = time.perf_counter() - t0
        _add_cost(result.records, wall, result.timings.get("tokens_pushed", 0))
        rows = [(r["id"], cache_key(model_fp, task.fingerprint, r["id"], decoding, task.engine_version),
                 model_fp, task.fingerprint, r["id"], r) for r in result.records]
        store.put_records(run_id, task.key, rows)
        index = {"keys": [(r[0], r[1]) for r in rows], "metrics": result.metrics}
        store.put_records(None, task.key, [("*", index_key, model_fp, task.fingerprint, "*", index)])
        timings |= {k: result.timings.get(k, 0) for k in timings} | {"wall_s": wall}
        computed = len(rows)
    else:
        store.link_items(run_id, task.key, [tuple(k) for k in index["keys"]])
    reporter.advance(1)
    reporter.finish()
    records = store.get_records(k for _, k in index["keys"])
    scores = [records[k]["score"] for _, k in index["keys"]]
    metrics = {"accuracy": accuracy(scores, seed=seed), "engine": index["metrics"]}
    timings |= {"computed": computed, "cached": len(scores) - computed}
    store.finish_task(run_id, task.key, task.fingerprint, task.signature, metrics, timings)
    return TaskResult(task.key, metrics, timings | {"scores": scores})


def task_manifest(task: Task | EngineTask, spec: ModelSpec, ppl_batch: int | None = None) -> dict:
    if isinstance(task, Task):
        batch = {"opencompass_batch_size": b} if (b := oc_batch(task, ppl_batch)) else {}
        return {"fingerprint": task.fingerprint, "data_sha256": task.data_sha256,
                "signature": signature_of(task, ppl_batch), "mode": task.mode,
                "n": len(task.samples), "decoding": decoding_of(spec, task) | batch,
                **({"rows": task.rows.summary()} if task.rows else {})}
    return {"fingerprint": task.fingerprint, "signature": task.signature, "mode": task.mode,
            "engine": task.engine_version, **task.meta}


def run_model(
    spec: ModelSpec, backend: Backend, suite: SuiteSpec, tasks: list[Task | EngineTask], store: Store,
    reporter: Reporter | None = None, data_dir: str = "", log_file: Path | None = None,
) -> ModelRun:
    reporter = reporter or Reporter()
    batch = suite.ppl_compat.opencompass_batch_size if suite.ppl_compat else None
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "suite": suite.model_dump(),
        "model": spec.model_dump(),
        "model_fingerprint": backend.fingerprint,
        "trust_remote_code": spec.trust_remote_code,
        "tasks": {t.key: task_manifest(t, spec, batch) for t in tasks},
        "data_dir": data_dir,
        "log_file": str(log_file) if log_file else None,
        "seed": suite.seed,
        **environment(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    run_id = store.start_run(suite.name, spec.name, manifest)
    result = ModelRun(spec.name, run_id)
    calls_before = backend.stats.get("forward_calls", 0)
    try:
        for task in tasks:
            if isinstance(task, Task):
                result.tasks.append(evaluate_task(backend, spec, task, store, run_id, reporter,
                                                  suite.seed, batch))
            else:
                result.tasks.append(evaluate_engine_task(backend, spec, task, store, run_id,
                                                         reporter, suite.seed))
    except (KeyboardInterrupt, Interrupted) as exc:
        store.finish_run(run_id, status="interrupted")
        total = sum(len(t.samples) for t in tasks if isinstance(t, Task))
        of = f" of {total}" if total and all(isinstance(t, Task) for t in tasks) else ""
        raise Interrupted(getattr(exc, "signum", signal.SIGINT), (
            f"model '{spec.name}' on suite '{suite.name}': {store.count_items(run_id)}{of} samples "
            f"are kept in {store.path} (run {run_id}, stored as interrupted); rerun the same "
            "command to resume")) from None
    except BaseException:
        store.finish_run(run_id, status="failed")
        raise
    result.average = suite_average({t.task: t.timings["scores"] for t in result.tasks},
                                   seed=suite.seed)
    result.model_calls = backend.stats.get("forward_calls", 0) - calls_before
    totals = {
        k: sum(t.timings[k] for t in result.tasks)
        for k in ("wall_s", "tokens_pushed", "tokens_naive", "forward_calls", "computed", "cached")
    }
    store.finish_run(run_id, manifest_update={
        "ended_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "average": result.average,
        "totals": totals, "backend": backend.info,
    })
    return result
