"""Evaluate tasks with a backend, through the two layers of the store.

For each (model, task): compute every sample's output key, take the outputs the store already
knows, ask the model for the rest in chunks (each chunk committed before the next starts; an
API model: one sample per request, `parallel` in flight, each committed as it arrives); then
the same for each scorer over the outputs (score key: output key + scorer fingerprint); then
metrics over all samples. Nothing already known is computed again; a killed run loses at most
one chunk; a new scorer asks the model nothing.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from bench.backends.base import Backend, oc_batched_ce
from bench.config import ModelSpec, SuiteSpec
from bench.engines import EngineScore, EngineTask
from bench.errors import BenchError, Interrupted
from bench.evaluate.manifest import cache_key, environment, score_key
from bench.evaluate.versions import Elsewhere, stored_elsewhere
from bench.metrics.stats import mean_ci, suite_average
from bench.pool import each_as_done
from bench.store import SCHEMA_VERSION, Store
from bench.tasks.base import Task
from bench.tasks.kinds import get_kind

CHUNK = int(os.environ.get("BENCH_CHUNK_SIZE", "32"))  # samples committed together


class Reporter:
    """Progress hooks; the CLI passes a rich one, tests the silent default."""

    def start(self, label: str, total: int, done: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def finish(self) -> None: ...

    def note(self, text: str) -> None:
        """A line to say before the work it explains (a cache miss and its reason)."""


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
    scorer_calls: int = 0  # scores computed (not read from the store)
    api: dict | None = None  # an API model's throughput this run (api_figures)
    judges: dict = field(default_factory=dict)  # judge name -> requests and tokens this run


def add_cost(records: list[dict], wall: float, tokens: int) -> None:
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


def _oc_batched(backend: Backend, task: Task, store: Store, run_id: str, outputs: list[dict],
                batch_size: int, backend_id: str) -> tuple[list[str], list[dict]]:
    """The task's ppl outputs as OpenCompass scores them at `batch_size` (suite `ppl_compat`), with
    their keys. Such a value depends on its batch neighbours, so its key holds the batch size, the
    item's position and the number of items (the data itself is in the task fingerprint), and the
    backend version(s) its outputs came from."""
    model_fp, n = backend.fingerprint, len(task.samples)
    keys = [cache_key(model_fp, task.fingerprint, s.hash, {
        "mode": "ppl", "opencompass_batch_size": batch_size, "position": i, "n_items": n},
        backend_id) for i, s in enumerate(task.samples)]
    known = store.get_records(keys)
    if len(known) == n:
        store.link_items(run_id, task.key, [(s.id, k) for s, k in zip(task.samples, keys)])
        return keys, [known[k] for k in keys]
    pad_nll = getattr(backend, "oc_pad_nll", None)
    if pad_nll is None:
        raise BenchError(f"ppl_compat: backend '{backend.info.get('backend')}' cannot reproduce "
                         "OpenCompass's batched values; drop ppl_compat from the suite")
    ces = oc_batched_ce([r["logprobs"] for r in outputs], batch_size, pad_nll)
    rows = []
    for s, k, r, ce in zip(task.samples, keys, outputs, ces, strict=True):
        kept = {f: v for f, v in r.items() if f not in ("prediction", "answer", "score")}
        rows.append((s.id, k, model_fp, task.fingerprint, s.hash, {
            **kept, "opencompass_batch_size": batch_size,
            "logprobs": [{**c, "ce": v, "ce_batch_size_1": c["ce"]} for c, v in zip(r["logprobs"], ce)],
        }))
    store.put_records(run_id, task.key, rows)
    return keys, [row[-1] for row in rows]


def score_outputs(scorers: list, items: list[tuple[str, object, str, dict]], store: Store,
                  run_id: str, task_key: str) -> tuple[dict[str, list[float]], int]:
    """Score (sample id, sample, output key, output) items with each scorer, through the score
    layer: a score already stored under (output key, scorer fingerprint) is read, not computed.
    Returns each metric's values in item order, and how many scores were computed."""
    values: dict[str, list[float]] = {}
    computed = 0
    for scorer in scorers:
        keys = [score_key(key, scorer.fingerprint) for _, _, key, _ in items]
        known = store.get_scores(keys)
        store.link_scores(run_id, task_key, [
            (sid, scorer.name, k) for (sid, *_), k in zip(items, keys) if k in known])
        todo = [i for i, k in enumerate(keys) if k not in known]
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start: start + CHUNK]
            scored = scorer.score([items[i][1] for i in chunk], [items[i][3] for i in chunk])
            store.put_scores(run_id, task_key, [
                (items[i][0], scorer.name, keys[i], items[i][2], scorer.fingerprint, r)
                for i, r in zip(chunk, scored, strict=True)])
            known.update((keys[i], r) for i, r in zip(chunk, scored))
            computed += len(chunk)
        for metric in scorer.metrics:
            values[metric] = [known[k]["values"][metric] for k in keys]
    return values, computed


def _ask_each(kind, backend, spec: ModelSpec, task: Task, todo: list[tuple], commit) -> None:
    """An API model: one sample per request, `backend.parallel` in flight, each output committed
    as it arrives (with what its requests cost). A sample that fails for good stops new requests;
    those in flight finish and are kept. Ctrl-C cuts the requests in flight and keeps the rest."""
    def one(sample) -> dict:
        with backend.meter() as meter:
            record = kind.ask(backend, spec, task, [sample])[0]
        record["api"] = meter.summary()
        record["cost"] = {"wall_s": meter.latency_s,
                          "tokens_pushed": meter.prompt_tokens + meter.completion_tokens}
        return record

    each_as_done({i: partial(one, s) for i, (s, _) in enumerate(todo)}, backend.parallel,
                 lambda i, record: commit([(todo[i], record)]), backend.abort,
                 f"samples of task {task.key} asked in this run")


def output_keys(backend: Backend, spec: ModelSpec, task: Task) -> list[str]:
    """Each sample's output key: model, task, sample, decoding and backend version."""
    decoding = get_kind(task.kind).decoding(spec, task)
    backend_id = backend.info["backend_version"]
    return [cache_key(backend.fingerprint, task.fingerprint, s.hash, decoding, backend_id)
            for s in task.samples]


def ask_chunks(kind, backend, spec: ModelSpec, task: Task, todo: list[tuple], commit) -> None:
    """A local model: the samples in chunks of CHUNK, each committed before the next starts."""
    for i in range(0, len(todo), CHUNK):
        chunk = todo[i : i + CHUNK]
        c0, pushed0 = time.perf_counter(), backend.stats.get("tokens_pushed", 0)
        outputs = kind.ask(backend, spec, task, [s for s, _ in chunk])
        add_cost(outputs, time.perf_counter() - c0, backend.stats.get("tokens_pushed", 0) - pushed0)
        commit(list(zip(chunk, outputs, strict=True)))


def same_output(a, b, tol: float = 1e-6) -> bool:
    """Two outputs of one key agree: equal text and answers, numbers within `tol` (relative);
    what a computation cost (cost, api) is not part of it."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (set(a) | set(b)) - {"cost", "api"}
        return all(same_output(a.get(k), b.get(k), tol) for k in keys)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_output(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            abs(a - b) <= tol * max(1.0, abs(a), abs(b))
    return a == b


def reproduction(task: Task, keys: list[str], stored: dict, fresh: dict) -> dict:
    """How many stored answers the model gave again (`--from`: does a result reproduce?)."""
    ids = [s.id for s, k in zip(task.samples, keys) if k in stored and not same_output(stored[k], fresh[k])]
    checked = sum(k in stored for k in keys)
    return {"checked": checked, "same": checked - len(ids), "differ": ids[:20], "n_differ": len(ids)}


def known_outputs(backend: Backend, spec: ModelSpec, task: Task, store: Store, reuse: bool = False
                  ) -> tuple[list[str], dict[str, dict], Elsewhere | None]:
    """Each sample's output key, the outputs the store holds, and the answers to the missing
    samples stored under another backend version (bench/evaluate/versions.py). With `reuse`,
    those answers count as known under their own keys, which then stand in the returned list."""
    keys = output_keys(backend, spec, task)
    known = store.get_records(keys)
    missing = [i for i, k in enumerate(keys) if k not in known]
    elsewhere = stored_elsewhere(store, backend, spec, task, missing) if missing else None
    if elsewhere and reuse:
        for i, k in elsewhere.keys.items():
            keys[i] = k
            known[k] = elsewhere.records[k]
    return keys, known, elsewhere


def evaluate_task(
    backend: Backend, spec: ModelSpec, task: Task, store: Store, run_id: str,
    reporter: Reporter, seed: int, ppl_batch: int | None = None, generate: bool = True,
    recompute: bool = False, asker=None, reuse: bool = False,
) -> TaskResult:
    """One native task. `asker` asks the model for the samples the store lacks (ask_chunks; the
    Ray executor's sends them to model copies on a cluster). With `recompute`, stored answers are
    asked again and compared with the new ones (timings["reproduced"]); the stored ones stay (a
    key keeps its first record). Answers stored under another backend version are announced,
    and taken only with `reuse` (`--reuse-across-versions`)."""
    kind = get_kind(task.kind)
    model_fp = backend.fingerprint
    if recompute:
        keys, elsewhere = output_keys(backend, spec, task), None
        stored, known = store.get_records(keys), {}
    else:
        keys, known, elsewhere = known_outputs(backend, spec, task, store, reuse)
        stored = {}
    if elsewhere:
        reporter.note(elsewhere.note(task.key, reuse))
    store.link_items(run_id, task.key, [(s.id, k) for s, k in zip(task.samples, keys) if k in known])
    todo = [(s, k) for s, k in zip(task.samples, keys) if k not in known]
    if todo and not generate:
        raise BenchError(f"model '{spec.name}': {len(todo)} of {len(task.samples)} samples of "
                         f"task {task.key} have no stored answer, and `bench judge` never "
                         "generates; run `bench run` with this suite first")

    reporter.start(f"{spec.name} · {task.key} ({task.mode})", len(task.samples), len(task.samples) - len(todo))
    before = dict(backend.stats) if todo else {}

    def commit(pairs: list[tuple[tuple, dict]]) -> None:
        store.put_records(run_id, task.key, [
            (s.id, k, model_fp, task.fingerprint, s.hash, r) for (s, k), r in pairs])
        known.update((k, r) for (_, k), r in pairs)
        reporter.advance(len(pairs))

    t0 = time.perf_counter()
    if getattr(backend, "parallel", None):
        _ask_each(kind, backend, spec, task, todo, commit)
    else:
        (asker or ask_chunks)(kind, backend, spec, task, todo, commit)
    wall = time.perf_counter() - t0
    reporter.finish()

    reproduced = reproduction(task, keys, stored, known) if recompute else None
    outputs = [stored.get(k, known[k]) for k in keys]
    if oc_batch(task, ppl_batch):
        backend_id = backend.info["backend_version"]
        if elsewhere and reuse:  # values from a mix of versions are filed as such
            backend_id += f" reusing {elsewhere.version}"
        keys, outputs = _oc_batched(backend, task, store, run_id, outputs, ppl_batch, backend_id)
    items = [(s.id, s, k, r) for s, k, r in zip(task.samples, keys, outputs)]
    values, scored = score_outputs(task.scorers, items, store, run_id, task.key)
    metrics = {name: mean_ci(v, seed=seed) for name, v in values.items()}
    after = backend.stats if todo else {}
    timings = {
        "wall_s": wall, "computed": len(todo), "cached": len(task.samples) - len(todo),
        "scored": scored,
        **{k: after.get(k, 0) - before.get(k, 0) for k in ("tokens_pushed", "tokens_naive", "forward_calls")},
        **({"reproduced": reproduced} if reproduced else {}),
        **({"other_version": elsewhere.summary(reuse)} if elsewhere else {}),
    }
    store.finish_task(run_id, task.key, task.fingerprint, signature_of(task, ppl_batch), metrics, timings)
    rows = task.rows.summary() if task.rows else None
    return TaskResult(task.key, metrics, timings | {"scores": values[task.scorers[0].metrics[0]]}, rows)


def evaluate_engine_task(
    backend: Backend, spec: ModelSpec, task: EngineTask, store: Store, run_id: str,
    reporter: Reporter, seed: int,
) -> TaskResult:
    """A task another engine runs whole. Its outputs go under per-sample keys, and an index
    record under the task's key says which; with that index present, nothing runs. The engine's
    own per-sample score is filed in the score layer like any scorer's (EngineScore)."""
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
        add_cost(result.records, wall, result.timings.get("tokens_pushed", 0))
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
    items = [(sid, None, k, records[k]) for sid, k in index["keys"]]
    values, scored = score_outputs([EngineScore(task.signature)], items, store, run_id, task.key)
    metrics = {"accuracy": mean_ci(values["accuracy"], seed=seed), "engine": index["metrics"]}
    timings |= {"computed": computed, "cached": len(items) - computed, "scored": scored}
    store.finish_task(run_id, task.key, task.fingerprint, task.signature, metrics, timings)
    return TaskResult(task.key, metrics, timings | {"scores": values["accuracy"]})


def task_manifest(task: Task | EngineTask, spec: ModelSpec, ppl_batch: int | None = None) -> dict:
    if isinstance(task, Task):
        batch = {"opencompass_batch_size": b} if (b := oc_batch(task, ppl_batch)) else {}
        return {"fingerprint": task.fingerprint, "data_sha256": task.data_sha256, "kind": task.kind,
                "signature": signature_of(task, ppl_batch), "mode": task.mode,
                "scorers": {s.name: {"fingerprint": s.fingerprint, "signature": s.signature,
                                     "metrics": list(s.metrics)} for s in task.scorers},
                "n": len(task.samples),
                "decoding": get_kind(task.kind).decoding(spec, task) | batch,
                **({"rows": task.rows.summary()} if task.rows else {})}
    return {"fingerprint": task.fingerprint, "signature": task.signature, "mode": task.mode,
            "engine": task.engine_version, **task.meta}


def run_model(
    spec: ModelSpec, backend: Backend, suite: SuiteSpec, tasks: list[Task | EngineTask], store: Store,
    reporter: Reporter | None = None, data_dir: str = "", log_file: Path | None = None,
    generate: bool = True, recompute: bool = False, asker=None, executor: dict | None = None,
    reuse: bool = False,
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
        "executor": executor or {"kind": "local"},  # where the model calls ran
        "backend": {"backend_version": backend.info["backend_version"]},  # all of it at the end
        "reuse_across_versions": reuse,
        **environment(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    run_id = store.start_run(suite.name, spec.name, manifest)
    result = ModelRun(spec.name, run_id)
    calls_before = backend.stats.get("forward_calls", 0)
    api_before = (dict(backend.stats), len(backend.latencies)) if hasattr(backend, "latencies") else None
    judges_before = _judge_usage(tasks)
    try:
        for task in tasks:
            if isinstance(task, Task):
                result.tasks.append(evaluate_task(backend, spec, task, store, run_id, reporter,
                                                  suite.seed, batch, generate, recompute, asker,
                                                  reuse))
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
    result.scorer_calls = sum(t.timings["scored"] for t in result.tasks)
    totals = {
        k: sum(t.timings[k] for t in result.tasks)
        for k in ("wall_s", "tokens_pushed", "tokens_naive", "forward_calls", "computed", "cached")
    }
    if api_before is not None:
        result.api = api_figures(backend.stats, api_before[0], backend.latencies[api_before[1]:],
                                 totals["wall_s"])
        if result.api and getattr(spec, "prices", None) and not result.api["usage_missing"]:
            result.api["cost"] = spec.prices.cost(result.api["prompt_tokens"],
                                                  result.api["completion_tokens"])
            result.api["currency"] = spec.prices.currency
    result.judges = _judge_usage(tasks, judges_before)
    reused = {t.task: t.timings["other_version"] for t in result.tasks
              if t.timings.get("other_version", {}).get("reused")}
    store.finish_run(run_id, manifest_update={
        "ended_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "average": result.average,
        "totals": totals, "backend": backend.info, **({"api": result.api} if result.api else {}),
        **({"judge_usage": result.judges} if result.judges else {}),
        **({"reused_across_versions": reused} if reused else {}),
    })
    return result


def _judge_usage(tasks: list, before: dict | None = None) -> dict:
    """Requests and tokens the tasks' judges used since `before` (cost where the judge's
    models.yaml entry has prices)."""
    now: dict[str, dict] = {}
    specs = {}
    for task in tasks:
        for scorer in getattr(task, "scorers", []):
            for name, used in (scorer.usage() if hasattr(scorer, "usage") else {}).items():
                now[name] = used
                specs[name] = next(s for s in scorer.specs if s.name == name)
    if before is None:
        return now
    out = {}
    for name, used in now.items():
        delta = {k: v - before.get(name, {}).get(k, 0) for k, v in used.items()}
        if delta["requests"] or delta["errors"]:
            if specs[name].prices:
                delta |= {"cost": specs[name].prices.cost(delta["prompt_tokens"],
                                                          delta["completion_tokens"]),
                          "currency": specs[name].prices.currency}
            out[name] = delta
    return out


def api_figures(after: dict, before: dict, latencies: list[float], wall: float) -> dict | None:
    """An API model's throughput over this run's requests (None when it sent none). Token
    counts cover the responses that reported `usage`; `usage_missing` counts the others, and
    when no response reported any, the token figures are None (unknown, not 0)."""
    n = {k: after.get(k, 0) - before.get(k, 0) for k in (
        "requests", "retries", "errors", "prompt_tokens", "completion_tokens", "usage_missing")}
    if not n["requests"] and not n["errors"]:
        return None
    if n["requests"] and n["usage_missing"] == n["requests"]:
        n["prompt_tokens"] = n["completion_tokens"] = None
    p50, p95 = (float(v) for v in np.percentile(latencies, [50, 95])) if latencies else (None, None)
    out_tps = n["completion_tokens"] / wall if wall and n["completion_tokens"] is not None else None
    return n | {"wall_s": wall, "requests_per_s": n["requests"] / wall if wall else None,
                "output_tokens_per_s": out_tps, "latency_p50_s": p50, "latency_p95_s": p95}
