"""OpenCompass as an engine: bench writes a run config, runs OpenCompass in its own venv (`make
oc-venv`; it cannot share bench's) as a subprocess, and reads its predictions back as bench records.

A suite entry `{engine: opencompass, name: FewCLUE_bustm_gen, split: dev, limit: 20}` names a
dataset config of the installed package (opencompass/configs/datasets/**/<name>.py, or
`<folder>/<name>` where a name is ambiguous). The split picks the dataset abbr (`<x>-dev` or
`<x>-test`); the paths OpenCompass expects (`./data/FewCLUE/<task>/…`, `./data/CLUE/<TASK>/…`) are
pointed at bench's data dir (`fewclue/<task>/…`, `clue/<task>/…`); `limit` becomes the reader's
`test_range`. The model comes from models.yaml: HuggingFaceBaseModel for template base,
HuggingFacewithChatTemplate for chat; max_out_len = generation.max_new_tokens.

Records carry bench's native ids (`L<line>` of the data file: OpenCompass keeps file order, and its
CMNLI loaders drop `label == "-"` lines, as bench does), OpenCompass's prompt, raw output,
post-processed answer, and for ppl configs each label's PPL value (OpenCompass's mean token
cross-entropy, bench's `ce`) under `logprobs`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import ModelSpec, TaskEntry
from bench.engines import EngineResult
from bench.engines.opencompass_config import (
    DatasetDecl,
    OCConfig,
    OCInstall,
    line_ids,
    load_config,
    local_data_path,
    model_dir,
    oc_install,
)
from bench.errors import BenchError
from bench.tasks.loaders import file_sha256
from bench.tasks.postprocess import first_capital

DEFAULT_BATCH_SIZE = 8  # what OpenCompass's own HF model configs use
DEFAULT_TIMEOUT = 6 * 3600


# ---- the engine task ------------------------------------------------------------------------------
@dataclass
class OpenCompassTask:
    """One OpenCompass dataset config at one split, run by OpenCompass itself."""

    config: OCConfig
    split: str
    data_dir: Path
    limit: int | None
    install: OCInstall
    selected: list[DatasetDecl]
    paths: dict[str, str]  # value OpenCompass reads → bench's file
    ids: dict[str, list[str] | None]  # abbr → native ids in OpenCompass order (None: unknown)
    batch_size: int = DEFAULT_BATCH_SIZE
    timeout: float = DEFAULT_TIMEOUT
    meta: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"oc:{self.config.name}-{self.split}"

    @property
    def mode(self) -> str:
        return self.config.inferencer

    @property
    def engine_version(self) -> str:
        return f"opencompass/{self.install.version}"

    @property
    def signature(self) -> str:
        return f"acc|engine:{self.engine_version}|config:{self.config.name}|mode:{self.mode}"

    @property
    def fingerprint(self) -> str:
        """OpenCompass version, config texts, data sha256s, split abbrs, limit and batch size (ppl
        values depend on it). The model's rendering mode is in the model fingerprint."""
        data = {v: file_sha256(Path(p)) for v, p in sorted(self.paths.items())}
        raw = json.dumps({"opencompass": self.install.version, "config": self.config.name,
                          "texts": self.config.texts, "abbrs": [d.abbr for d in self.selected],
                          "data": data, "limit": self.limit, "batch_size": self.batch_size},
                         sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()

    def decoding(self, spec: ModelSpec) -> dict:
        """What of the model spec changes OpenCompass's output (for a cache key)."""
        if self.mode == "ppl":
            return {"mode": "ppl", "batch_size": self.batch_size}
        return {"mode": "gen", "max_out_len": spec.generation.max_new_tokens,
                "batch_size": self.batch_size}

    def run(self, spec: ModelSpec, backend: Any) -> EngineResult:
        return run_opencompass([self], [OCModel(spec, backend, self.batch_size)])[spec_abbr(spec)][0]


def build(entry: TaskEntry, data_dir: Path) -> OpenCompassTask:
    """An OpenCompass dataset config as a bench task; every data file is checked here."""
    install = oc_install()
    config = load_config(entry.name, install)
    split = entry.split or "dev"
    selected = [d for d in config.decls if d.abbr.endswith(f"-{split}")]
    if not selected and split == "dev" and not any(
            d.abbr.endswith(("-dev", "-test")) for d in config.decls):
        selected = list(config.decls)  # CLUE configs hold only a dev set, under a bare abbr
    if not selected:
        abbrs = ", ".join(sorted({d.abbr for d in config.decls})) or "(none found)"
        raise BenchError(f"OpenCompass config '{entry.name}' has no '-{split}' dataset; "
                         f"abbrs: {abbrs}")
    paths: dict[str, str] = {}
    ids: dict[str, list[str] | None] = {}
    for decl in selected:
        ids[decl.abbr] = None
        for value in decl.files.values():
            local = local_data_path(value, Path(data_dir))
            if local is None:
                if "/" in value:
                    raise BenchError(f"OpenCompass config '{entry.name}': dataset '{decl.abbr}' "
                                     f"reads '{value}', which bench cannot map to its data dir")
                continue
            if not local.is_file():
                raise BenchError(f"OpenCompass config '{entry.name}': dataset '{decl.abbr}' reads "
                                 f"'{value}', expected at {local}, which does not exist; point "
                                 "--data-dir at a folder holding fewclue/<task>/ and clue/<task>/")
            paths[value] = str(local)
            if local.suffix == ".json" and ids[decl.abbr] is None:
                try:
                    ids[decl.abbr] = line_ids(decl, local)
                except BenchError:  # not JSON Lines (e.g. C3): OpenCompass's index is the id
                    ids[decl.abbr] = None
    task = OpenCompassTask(config, split, Path(data_dir), entry.limit, install, selected, paths, ids,
                           batch_size=int(os.environ.get("BENCH_OC_BATCH_SIZE", DEFAULT_BATCH_SIZE)),
                           timeout=float(os.environ.get("BENCH_OC_TIMEOUT", DEFAULT_TIMEOUT)))
    n = [len(v) for v in ids.values() if v is not None]
    task.meta = {"engine_task": entry.name,
                 "oc_config": config.path.relative_to(install.package).as_posix(),
                 "abbrs": [d.abbr for d in selected], "split": split, "data_files": paths,
                 "n": sum(min(k, entry.limit) if entry.limit else k for k in n) if n else None}
    return task


# ---- running OpenCompass ------------------------------------------------------------------------
@dataclass
class OCModel:
    spec: ModelSpec
    backend: Any
    batch_size: int = DEFAULT_BATCH_SIZE
    abbr: str = ""

    def __post_init__(self) -> None:
        self.abbr = self.abbr or spec_abbr(self.spec)

    @property
    def template(self) -> str:
        mode = getattr(self.backend, "mode", None) or self.spec.template
        return "base" if mode == "auto" else mode


def spec_abbr(spec: ModelSpec) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec.name)


def _model_source(model: OCModel, root: Path) -> str:
    spec = model.spec
    if spec.adapter:
        raise BenchError(f"model '{spec.name}': the OpenCompass engine does not load adapters; "
                         "merge the adapter into the weights or use bench's native tasks")
    dtype = str(getattr(model.backend, "dtype", "float32")).removeprefix("torch.")
    device = getattr(getattr(model.backend, "device", None), "type", "cpu")
    override = model.backend.tokenizer.chat_template if (
        spec.chat_template and model.template == "chat") else None
    kwargs: dict[str, Any] = {
        "abbr": model.abbr, "path": model_dir(spec, override, root / model.abbr),
        "max_out_len": spec.generation.max_new_tokens, "batch_size": model.batch_size,
        "model_kwargs": {"torch_dtype": dtype, "device_map": "cpu" if device == "cpu" else "auto",
                         "trust_remote_code": spec.trust_remote_code},
        "tokenizer_kwargs": {"trust_remote_code": spec.trust_remote_code},
        "run_cfg": {"num_gpus": 0},
    }
    if spec.revision and not Path(spec.path).expanduser().is_dir():
        kwargs["model_kwargs"]["revision"] = kwargs["tokenizer_kwargs"]["revision"] = spec.revision
    cls = "HuggingFacewithChatTemplate" if model.template == "chat" else "HuggingFaceBaseModel"
    return f"dict(type={cls}, **{kwargs!r})"


def render_config(tasks: list[OpenCompassTask], models: list[str]) -> str:
    """An OpenCompass run config: the named dataset lists, filtered to the split's abbrs, their
    paths pointed at bench's data, `limit` as test_range."""
    lines = ["from mmengine.config import read_base", "", "with read_base():"]
    names = []
    for t, task in enumerate(tasks):
        for v, var in enumerate(task.config.variables):
            lines.append(f"    from {task.config.module} import {var} as _ds_{t}_{v}")
            names.append((f"_ds_{t}_{v}", task))
    lines += ["from opencompass.models import HuggingFaceBaseModel, HuggingFacewithChatTemplate", "",
              "datasets = []"]
    for var, task in names:
        abbrs = [d.abbr for d in task.selected]
        lines += [f"for _d in {var}:",
                  f"    if _d['abbr'] in {abbrs!r}:",
                  f"        _paths = {task.paths!r}",
                  "        _d = dict(_d, **{_k: _paths.get(_d[_k], _d[_k])",
                  "                         for _k in ('path', 'data_files') if isinstance(_d.get(_k), str)})"]
        if task.limit:
            lines.append("        _d['reader_cfg'] = dict(_d['reader_cfg'], "
                         f"test_range='[0:{task.limit}]')")
        lines.append("        datasets.append(_d)")
    lines += ["models = [", *(f"    {m}," for m in models), "]", ""]
    return "\n".join(lines)


def _tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    return "\n".join(text.splitlines()[-lines:])


def run_opencompass(tasks: list[OpenCompassTask],
                    models: list[OCModel]) -> dict[str, list[EngineResult]]:
    """One OpenCompass process for every (model, task): {model abbr: [EngineResult per task]}."""
    install = tasks[0].install
    for m in models:
        if m.template == "chat" and any(t.mode == "ppl" for t in tasks):
            raise BenchError(f"model '{m.spec.name}': OpenCompass scores _ppl configs only with base "
                             "models (HuggingFacewithChatTemplate has no get_ppl); use template: base")
    work = Path(tempfile.mkdtemp(prefix="bench-oc-"))
    config = work / "bench_oc_config.py"
    config.write_text(render_config(tasks, [_model_source(m, work / "models") for m in models]),
                      encoding="utf-8")
    log = work / "opencompass.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE") or "1",
            "TOKENIZERS_PARALLELISM": "false"}
    cmd = [str(install.python), "-m", "opencompass.cli.main", str(config),
           "-w", str(work / "out"), "--debug"]
    t0 = time.perf_counter()
    try:
        with log.open("w", encoding="utf-8") as fh:
            rc = subprocess.run(cmd, cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                timeout=max(t.timeout for t in tasks)).returncode
    except subprocess.TimeoutExpired:
        raise BenchError(f"OpenCompass timed out (BENCH_OC_TIMEOUT); its log: {log}\n"
                         f"{_tail(log)}") from None
    wall = time.perf_counter() - t0
    runs = sorted((work / "out").glob("*/predictions"))
    if rc != 0 or not runs:
        raise BenchError(f"OpenCompass failed (exit {rc}); config {config}, log {log}; "
                         f"its last lines:\n{_tail(log)}")
    run_dir = runs[-1].parent
    out: dict[str, list[EngineResult]] = {}
    for m in models:
        out[m.abbr] = [_read_task(run_dir, m.abbr, task, wall, log) for task in tasks]
    if not os.environ.get("BENCH_OC_KEEP"):
        shutil.rmtree(work, ignore_errors=True)
    return out


# ---- reading OpenCompass's output ---------------------------------------------------------------
def _read_shards(folder: Path, abbr: str) -> list[dict] | None:
    """One predictions/results file, or its shards `<abbr>_0.json`, `<abbr>_1.json`, … in order."""
    whole = folder / f"{abbr}.json"
    if whole.is_file():
        return [json.loads(whole.read_text(encoding="utf-8"))]
    shards, k = [], 0
    while (folder / f"{abbr}_{k}.json").is_file():
        shards.append(json.loads((folder / f"{abbr}_{k}.json").read_text(encoding="utf-8")))
        k += 1
    return shards or None


def _record(i: int, item: dict, detail: dict | None, mode: str) -> dict:
    gold = str(item.get("gold", ""))
    if mode == "ppl":
        labels = [k.removeprefix("label: ") for k in item if k.startswith("label: ")]
        per = [item[f"label: {lb}"] for lb in labels]
        cands = [{"label": lb, "ce": p.get("PPL"), "bpb": p.get("BPB")} for lb, p in zip(labels, per)]
        answer = str(item.get("prediction"))
        prompt = item.get(f"label: {gold}", {}).get("prompt", item.get("origin_prompt"))
        return {"input": prompt, "target": gold, "prediction": answer, "answer": answer,
                "score": float(answer == gold), "logprobs": cands, "oc_index": i}
    raw = item.get("prediction", "")
    if detail is not None and "predictions" in detail:
        answer = str(detail["predictions"])
    else:
        answer = first_capital(str(raw))
    prompt = item.get("origin_prompt")
    return {"input": prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False),
            "target": gold, "prediction": raw, "answer": answer, "score": float(answer == gold),
            "oc_index": i}


def _read_task(run_dir: Path, model: str, task: OpenCompassTask, wall: float,
               log: Path) -> EngineResult:
    records, metrics = [], {}
    for decl in task.selected:
        shards = _read_shards(run_dir / "predictions" / model, decl.abbr)
        if shards is None:
            raise BenchError(f"OpenCompass wrote no predictions for {model}/{decl.abbr}; "
                             f"log {log}:\n{_tail(log)}")
        items = [s[k] for s in shards for k in sorted(s, key=int)]
        results = (_read_shards(run_dir / "results" / model, decl.abbr) or [{}])[0]
        details = results.get("details") or {}
        ids = task.ids.get(decl.abbr)
        if ids is not None and len(ids) < len(items):
            ids = None  # OpenCompass kept records bench does not know of: fall back to its index
        prefix = f"{decl.abbr}:" if len(task.selected) > 1 else ""
        for i, item in enumerate(items):
            rec = _record(i, item, details.get(str(i)), task.mode)
            rec["id"] = prefix + (ids[i] if ids is not None else f"oc{i}")
            records.append(rec)
        if "accuracy" in results:
            name = "accuracy" if len(task.selected) == 1 else f"{decl.abbr}:accuracy"
            metrics[name] = {"value": float(results["accuracy"]) / 100, "n": len(items)}
    return EngineResult(records, metrics, {"wall_s": wall})
