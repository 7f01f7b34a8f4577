"""lm-evaluation-harness tasks inside bench.

A suite entry `{engine: lm-eval, name: <task>, include_path: <dir>?}` is loaded with lm-eval's
TaskManager (built-in tasks, or local YAMLs under include_path) and run by
`lm_eval.evaluator.evaluate` on bench's loaded weights (HFLM around `backend.model`: one load).
Per-sample output becomes bench records; the runner caches them. bench's own backends answer
lm-eval's `loglikelihood` contract too (Backend.loglikelihood, prefix-shared).
"""

from __future__ import annotations

import copy
import glob
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.config import ModelSpec, TaskEntry
from bench.engines import EngineResult
from bench.errors import BenchError, suggest
from bench.tasks.loaders import file_sha256

_NETWORK_HINTS = ("hub", "offline", "couldn't reach", "internet")


def _version() -> str:
    try:
        return metadata.version("lm-eval")
    except metadata.PackageNotFoundError:
        raise BenchError("engine 'lm-eval' needs lm-eval; pip install 'bench[lm-eval]'") from None


@lru_cache(maxsize=1)
def _builtin_manager():
    """lm-eval's own task index (scanning ~15k YAMLs takes seconds: built once per process)."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


def _short_suggest(name: str, names: list[str], local: list[str]) -> str:
    """bench.errors.suggest, listing the local tasks only (lm-eval has ~15k built-in names)."""
    hint = suggest(name, names).partition("; available: ")[0]
    listed = f"local: {', '.join(sorted(local))}; " if local else ""
    return (f"{hint}; {listed}{len(names)} tasks in all (list them: "
            "lm-eval ls tasks [--include_path DIR])")


class DatasetUnreachable(BenchError):
    """An lm-eval task's dataset needs the network and could not be fetched."""


def _load_error(name: str, exc: Exception, dataset: str | None) -> BenchError:
    """One BenchError for a task whose dataset or config cannot be loaded."""
    text = f"{type(exc).__name__}: {exc}".strip()
    where = f" (dataset '{dataset}')" if dataset else ""
    hinted = not isinstance(exc, KeyError) and any(h in text.lower() for h in _NETWORK_HINTS)
    if isinstance(exc, ConnectionError) or hinted:
        return DatasetUnreachable(
            f"lm-eval task '{name}'{where}: its dataset could not be fetched "
            f"({text.splitlines()[0]}).\n  lm-eval's built-in tasks download their data from the "
            "Hugging Face Hub, which needs network access (is HF_HUB_OFFLINE or "
            "HF_DATASETS_OFFLINE set?).\n  next step: run with network access, or write a local "
            "task YAML (dataset_path: json, dataset_kwargs: {data_files: ...}) and name its "
            "folder in include_path")
    return BenchError(f"lm-eval task '{name}'{where}: cannot load: {text}")


def _try_load(manager: Any, name: str) -> dict:
    entry = manager.task_index.get(name)
    dataset = (entry.cfg or {}).get("dataset_path") if entry is not None else None
    try:
        return manager.load([name])
    except Exception as exc:  # noqa: BLE001 - datasets/hub raise many types; one message
        raise _load_error(name, exc, dataset) from exc


def load_lm_eval_task(name: str, include_path: str | None) -> tuple[Any, dict]:
    """(TaskManager, {"tasks": {name: Task}, ...}) for a task, group or tag name.

    With include_path, its folder is indexed alone first (seconds faster than lm-eval's ~15k
    built-in YAMLs); a local group that names built-in tasks falls back to both indexes."""
    _version()
    from lm_eval.tasks import TaskManager

    local_names: list[str] = []
    if include_path:
        folder = Path(include_path).expanduser()
        if not folder.is_dir():
            raise BenchError(f"lm-eval task '{name}': include_path '{include_path}' is not a "
                             "folder; point it at the folder holding the task YAMLs")
        local = TaskManager(include_path=str(folder), include_defaults=False)
        local_names = local.all_tasks
        if name in local_names:
            try:
                return local, _try_load(local, name)
            except DatasetUnreachable:
                raise
            except BenchError:  # e.g. a local group naming built-in tasks
                pass
            both = TaskManager(include_path=str(folder))
            return both, _try_load(both, name)
    builtin = _builtin_manager()
    if name not in builtin.all_tasks:
        names = sorted(set(builtin.all_tasks) | set(local_names))
        raise BenchError(f"unknown lm-eval task '{name}'{_short_suggest(name, names, local_names)}")
    return builtin, _try_load(builtin, name)


# ---- identity ------------------------------------------------------------------------------------
def _local_files(value: Any) -> dict[str, list[Path]]:
    """{entry: local files it names} for a data_files value (str or glob, list, {split: ...})."""
    if isinstance(value, dict):
        return {k: v for x in value.values() for k, v in _local_files(x).items()}
    if isinstance(value, list | tuple):
        return {k: v for x in value for k, v in _local_files(x).items()}
    if isinstance(value, str) and not re.match(r"^[a-z0-9+]+://", value):
        found = sorted(glob.glob(os.path.expanduser(value), recursive=True))
        return {value: [Path(f) for f in found if Path(f).is_file()]} if found else {}
    return {}


def _config_digest(config: dict) -> tuple[dict, dict[str, str]]:
    """The config with local data_files replaced by their sha256 (content, not location), and
    those hashes; config_source (where the YAML lay) is dropped."""
    config = copy.deepcopy(config)
    (config.get("metadata") or {}).pop("config_source", None)
    data_files = (config.get("dataset_kwargs") or {}).get("data_files")
    files = _local_files(data_files)
    source = Path(os.path.expanduser(str(config.get("dataset_path", ""))))
    if config.get("dataset_path") and source.exists():  # load_dataset(<local dir or file>)
        found = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        files[config["dataset_path"]] = found
    hashes = {str(f): file_sha256(f) for paths in files.values() for f in paths}
    digest = {k: "sha256:" + ",".join(hashes[str(f)] for f in paths) for k, paths in files.items()}

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [swap(v) for v in value]
        return digest.get(value, value) if isinstance(value, str) else value

    if data_files is not None:
        config["dataset_kwargs"]["data_files"] = swap(data_files)
    if config.get("dataset_path") in files:
        config["dataset_path"] = digest[config["dataset_path"]]
    return config, hashes


def _stable(value: Any) -> str:
    """json default: objects by type and repr without memory addresses."""
    return re.sub(r" at 0x[0-9a-f]+", "", f"{type(value).__name__}:{value!r}")


def _effective_fewshot(task: Any, requested: int | None) -> int:
    """simple_evaluate's rule: a config num_fewshot of 0 is never overridden."""
    default = task.get_config("num_fewshot")
    if requested is None or default == 0:
        return int(default or 0)
    return requested


# ---- the engine task -----------------------------------------------------------------------------
@dataclass
class LmEvalTask:
    """An lm-eval task (or group) that bench runs and caches."""

    name: str
    entry: TaskEntry
    loaded: dict  # TaskManager.load(): {"tasks": {name: Task}, "groups": {...}}
    key: str = ""
    mode: str = ""
    signature: str = ""
    fingerprint: str = ""
    engine_version: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        version = _version()
        tasks = self.loaded["tasks"]
        types = {t.get_config("output_type") for t in tasks.values()}
        self.key = f"lm-eval:{self.name}"
        self.mode = "gen" if "generate_until" in types else "ppl"
        first = next(iter(tasks.values()))
        metric = next(iter(getattr(first, "_metric_fn_list", {}) or {"acc": None}))
        shots = {_effective_fewshot(t, self.entry.num_fewshot) for t in tasks.values()}
        fewshot = shots.pop() if len(shots) == 1 else "mixed"
        self.signature = f"{metric}|engine:lm-eval-{version}|task:{self.name}|fewshot:{fewshot}"
        self.engine_version = f"lm-eval/{version}"
        configs, data = {}, {}
        for tname, task in sorted(tasks.items()):
            configs[tname], hashes = _config_digest(task.dump_config())
            data.update(hashes)
        identity = {"lm_eval": version, "configs": configs, "num_fewshot": self.entry.num_fewshot,
                    "fewshot": fewshot, "limit": self.entry.limit, "data": sorted(data.values())}
        raw = json.dumps(identity, sort_keys=True, ensure_ascii=False, default=_stable)
        self.fingerprint = hashlib.sha256(raw.encode()).hexdigest()
        n = 0
        for task in tasks.values():
            docs = len(task.eval_docs)
            n += min(docs, self.entry.limit) if self.entry.limit else docs
        splits = sorted({str(t.get_config("test_split") or t.get_config("validation_split"))
                         for t in tasks.values()})
        self.meta = {"engine_task": self.name, "subtasks": sorted(tasks), "n": n,
                     "split": ",".join(splits), "output_types": sorted(types),
                     "num_fewshot": fewshot, "data_files": data,
                     "include_path": self.entry.include_path}

    def _prepare(self) -> None:
        """What simple_evaluate does before evaluate(): seeds and num_fewshot overrides (its
        environment report, seconds of subprocesses, is left out)."""
        import random

        import numpy as np
        import torch
        from lm_eval.defaults import DEFAULT_OTHER_SEED, DEFAULT_RANDOM_SEED

        random.seed(DEFAULT_RANDOM_SEED)
        np.random.seed(DEFAULT_OTHER_SEED)
        torch.manual_seed(DEFAULT_OTHER_SEED)
        for task in self.loaded["tasks"].values():
            shots = _effective_fewshot(task, self.entry.num_fewshot)
            task.set_config(key="num_fewshot", value=shots)
            task.set_fewshot_seed(seed=DEFAULT_OTHER_SEED)

    def decoding(self, spec: ModelSpec) -> dict:
        """lm-eval decodes with the task's own generation_kwargs (in the fingerprint): nothing
        of the model spec changes its output."""
        return {}

    def run(self, spec: ModelSpec, backend: Any) -> EngineResult:
        """lm-eval's evaluate() on backend's weights; chat template applied when bench's is."""
        from lm_eval import evaluator
        from lm_eval.models.huggingface import HFLM

        model = backend.model
        lm = HFLM(pretrained=model, tokenizer=copy.deepcopy(backend.tokenizer),
                  batch_size=max(1, min(64, backend.batch_tokens // 256)))
        counts = {"forward_calls": 0, "tokens_pushed": 0, "tokens_padded": 0}
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model

        def count(_module, args, kwargs) -> None:
            ids = args[0] if args else kwargs.get("input_ids")
            mask = kwargs.get("attention_mask")
            counts["forward_calls"] += 1
            counts["tokens_padded"] += int(ids.numel()) if ids is not None else 0
            if ids is not None:  # with a KV cache the mask spans the past too: count new tokens
                real = mask[..., -ids.shape[-1]:].sum() if mask is not None else ids.numel()
                counts["tokens_pushed"] += int(real)

        hook = inner.register_forward_pre_hook(count, with_kwargs=True)
        t0 = time.perf_counter()
        try:
            self._prepare()
            out = evaluator.evaluate(
                lm=lm, task_dict=self.loaded, limit=self.entry.limit, log_samples=True,
                bootstrap_iters=1000, apply_chat_template=getattr(backend, "mode", "") == "chat",
                fewshot_as_multiturn=True)
        finally:
            hook.remove()
        wall = time.perf_counter() - t0
        counts["tokens_naive"] = counts["tokens_pushed"]  # lm-eval shares no prefixes
        for k, v in counts.items():  # lm-eval's passes are model calls too
            backend.stats[k] = backend.stats.get(k, 0) + v
        tasks = self.loaded["tasks"]
        records, requests = [], 0
        for tname, samples in out["samples"].items():
            prefix = f"{tname}/" if len(tasks) > 1 else ""
            for s in samples:
                if s["filter"] == samples[0]["filter"]:  # one record per doc: the first filter
                    records.append(_record(tasks[tname], s, prefix))
                    requests += len(s["arguments"])
        timings = {"wall_s": wall, **counts, "requests": requests}
        return EngineResult(records, _metrics(out, len(tasks) > 1), timings)


def _score(sample: dict) -> float:
    for name in ("acc", *sample.get("metrics", [])):
        value = sample.get(name)
        if isinstance(value, bool | int | float):
            return float(value)
    return 0.0


def _record(task: Any, s: dict, prefix: str) -> dict:
    """One lm-eval logged sample as a bench record."""
    args = [list(a) for a in s["arguments"]]
    record = {"id": f"{prefix}doc{s['doc_id']}", "input": str(args[0][0]) if args else "",
              "score": _score(s)}
    if task.get_config("output_type") == "multiple_choice":
        lls = [(float(r[0]), bool(r[1])) for r in s["filtered_resps"]]
        choices = task.doc_to_choice(s["doc"])
        best = max(range(len(choices)), key=lambda i: lls[i][0])  # np.argmax: first max
        golds = s["target"] if isinstance(s["target"], list) else [s["target"]]
        gold = [choices[t] if isinstance(t, int) and 0 <= t < len(choices) else str(t)
                for t in golds]
        record |= {"target": " | ".join(gold),
                   "prediction": choices[best], "answer": choices[best],
                   "logprobs": [{"logprob": ll, "is_greedy": g} for ll, g in lls[:len(choices)]]}
    elif task.get_config("output_type") == "generate_until":
        raw = s["resps"][0][0] if s["resps"] and s["resps"][0] else ""
        record |= {"target": str(s["target"]), "prediction": str(raw),
                   "answer": str(s["filtered_resps"][0]) if s["filtered_resps"] else ""}
    else:  # loglikelihood: (ll, is_greedy); loglikelihood_rolling: ll
        resp = (s["filtered_resps"] or [0.0])[0]
        ll, greedy = (resp[0], bool(resp[1])) if isinstance(resp, list | tuple) else (resp, None)
        shown = "" if greedy is None else str(greedy)
        record |= {"target": str(s["target"]), "prediction": shown, "answer": shown,
                   "logprobs": [{"logprob": float(ll), "is_greedy": greedy}]}
    return record


def _n_samples(out: dict, name: str, key: str) -> int:
    """Samples behind a task's metric; a group's: those of its leaves that report `key`."""
    if name in (out.get("group_subtasks") or {}):
        return sum(_n_samples(out, child, key) for child in out["group_subtasks"][name])
    if key not in (out["results"].get(name) or {}):
        return 0
    return int((out.get("n-samples", {}).get(name) or {}).get("effective") or 0)


def _metrics(out: dict, grouped: bool) -> dict:
    """lm-eval's aggregate metrics as {name: {"value", "n", "stderr"}} ("acc,none" → "acc")."""
    metrics = {}
    for tname, values in {**out["results"], **(out.get("groups") or {})}.items():
        for key, value in values.items():
            if "," not in key or "_stderr," in key or not isinstance(value, int | float):
                continue
            metric, filt = key.split(",", 1)
            stderr = values.get(f"{metric}_stderr,{filt}")
            name = metric if filt == "none" else f"{metric}[{filt}]"
            metrics[f"{tname}:{name}" if grouped else name] = {
                "value": float(value), "n": _n_samples(out, tname, key),
                "stderr": float(stderr) if isinstance(stderr, int | float) else None}
    return metrics


def build(entry: TaskEntry, data_dir: Path) -> LmEvalTask:
    """An lm-eval task for a suite entry (data_dir is unused: lm-eval tasks name their data)."""
    _, loaded = load_lm_eval_task(entry.name, entry.include_path)
    if not loaded.get("tasks"):
        raise BenchError(f"lm-eval task '{entry.name}' holds no tasks")
    return LmEvalTask(entry.name, entry, loaded)
