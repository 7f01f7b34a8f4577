"""`bench train`: one config → SFT or DPO over TRL's trainers, PEFT and bitsandbytes → a model
`bench run` scores by name.

Steps: check everything (config, base, data rows) before a model loads; key the run by what
decides the weights (base fingerprint, data sha256, learned settings); a finished run with that key
trains nothing, an unfinished one resumes from its last checkpoint; train; save the adapter (or the
full model), the log and the sampled answers into the run folder and the store; register the output
name beside models.yaml.

DPO on an SFT output: the SFT adapter is merged into its base (full precision) and saved in the run
folder; DPO trains a new adapter on that merged model, which is also the reference model (TRL's
default with PEFT: the adapter switched off). The output is the merged SFT model plus the DPO
adapter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.config import ModelSpec, looks_local
from bench.chat import with_system
from bench.errors import BenchError
from bench.evaluate.manifest import environment, fingerprint_of
from bench.rows import RowLog, check
from bench.store import Store
from bench.tasks.loaders import file_sha256
from bench.train.config import TrainConfig, load_train_config
from bench.train.data import PreferenceRow, SFTRow, read_preference, read_sft
from bench.train.dataset_info import load_dataset_info, read_source


@dataclass
class TrainResult:
    output: str
    fingerprint: str
    run_dir: Path
    trained: bool  # False: an earlier run with the same key answered
    steps: int
    wall_s: float
    merged: str | None = None  # base + adapter in one folder (merge: true)
    replaced: str | None = None  # the fingerprint the output name meant before, if another
    reproduced: dict | None = None  # verify: the same weights again? (see verify_training)


def read_data(cfg: TrainConfig, base_dir: Path) -> tuple[list, list[str], RowLog]:
    """The config's rows (SFT or preference by method), each file's sha256 and what was read
    (bad rows by file:line, dropped ones by reason: printed, counted and recorded as `bench
    run` does); exit 2 past max_bad_fraction, before any model loads."""
    rows: list = []
    digests = []
    log = RowLog(", ".join(d.path for d in cfg.data))
    for ref in cfg.data:
        path = base_dir / Path(ref.path).expanduser()
        if ref.dataset:
            source = load_dataset_info(path, ref.dataset)
            want = "sft" if cfg.method == "sft" else "preference"
            if source.kind != want:
                raise BenchError(f"{path}: dataset '{ref.dataset}' holds {source.kind} rows; "
                                 f"method {cfg.method} needs {want} rows")
            got, _ = read_source(source, rows=log)
            path = source.path
        else:
            read = read_sft if cfg.method == "sft" else read_preference
            if not path.exists():
                raise BenchError(f"training data '{path}' not found")
            got, _ = read(path, ref.format, rows=log)
        rows += got
        digests.append(file_sha256(path) if path.is_file() else
                       fingerprint_of(*[file_sha256(p) for p in sorted(path.glob("*.json*"))]))
    check(log, cfg.max_bad_fraction, "in the training config to train on the rest")
    return rows, digests, log


def dataset_rows(cfg: TrainConfig, rows: list) -> list[dict]:
    """TRL's conversational rows: prompt/completion for SFT (the loss on the completion: the last
    answer), prompt/chosen/rejected for DPO; the config's system prompt where a row has none."""
    out = []
    for row in rows:
        if isinstance(row, SFTRow):
            messages = list(with_system(row.messages, cfg.system))
            out.append({"prompt": messages[:-1], "completion": messages[-1:]})
        else:
            assert isinstance(row, PreferenceRow)
            out.append({"prompt": list(with_system(row.prompt, cfg.system)),
                        "chosen": [{"role": "assistant", "content": row.chosen}],
                        "rejected": [{"role": "assistant", "content": row.rejected}]})
    return out


def train_key(cfg: TrainConfig, base_fp: str, digests: list[str], processes: int = 1) -> str:
    """What decides the weights. Several processes make a larger global batch, so their number
    counts (above 1 only: keys of single-process runs stay as they were)."""
    learned = cfg.learned()
    learned.pop("base")
    learned["data"] = [{**d, "path": None} for d in learned["data"]]
    if processes > 1:
        learned["processes"] = processes
    return fingerprint_of("train", 1, base_fp, digests, learned)


@dataclass
class TrainPlan:
    """A checked training run: nothing here has loaded a model or opened the store."""

    cfg: TrainConfig
    config_path: Path
    base: ModelSpec
    base_fp: str
    rows: list
    digests: list[str]
    key: str
    overlaps: list  # held-out items found in the training data (bench.train.decontam.Overlap)
    launch: object = None  # bench.scale.launch.Launch: train in several processes
    read: RowLog | None = None  # rows read, kept, bad (skipped) and dropped

    def warnings(self) -> list[str]:
        """What the terminal says before training: each bad row skipped, then what was dropped."""
        return self.read.lines() if self.read else []


def plan_training(config_path: Path, models_path: Path, results: Path,
                  overrides: dict | None = None, launch=None,
                  trust_remote_code: bool = False) -> TrainPlan:
    """Check the config, the base and every data row (exit 2 on bad input) before any model
    loads or anything is written. `overrides` replace config keys (the pipeline sets the base
    and the output name); `launch` (bench.scale.launch.Launch): several processes. A base with
    `trust_remote_code: true` is refused unless `trust_remote_code` (the user's opt-in)."""
    from bench.backends.hf import HFBackend
    from bench.config import check_remote_code
    from bench.train.registry import resolve

    cfg = load_train_config(config_path)
    if overrides:
        cfg = cfg.model_copy(update=overrides)
    if launch is not None:
        from bench.scale.launch import check

        check(launch, cfg)
    base = resolve(cfg.base, models_path, results / "bench.sqlite")
    check_remote_code(base, trust_remote_code, f"{config_path}: base")
    rows, digests, read = read_data(cfg, config_path.parent)
    backend = HFBackend(base)  # the tokenizer only: no weights load here
    if not backend.tokenizer.chat_template:
        raise BenchError(f"model '{base.name}': its tokenizer has no chat template, and bench "
                         "trains on conversations; set chat_template in its models.yaml entry")
    base_fp = backend.fingerprint
    processes = launch.num_processes if launch else 1
    return TrainPlan(cfg, config_path, base, base_fp, rows, digests,
                     train_key(cfg, base_fp, digests, processes),
                     contamination(cfg, rows, config_path.parent), launch, read)


def contamination(cfg: TrainConfig, rows: list, base_dir: Path) -> list:
    """The held-out questions (cfg.held_out) that share a 13-character span with training rows."""
    from bench.train.decontam import heldout_texts, overlaps, read_rows, train_texts

    items = [(f"{Path(p).name}:{i}", q) for p in cfg.held_out
             for i, q in heldout_texts(read_rows(base_dir / Path(p).expanduser()))]
    return overlaps(train_texts(rows), items) if items else []


def train(config_path: Path, models_path: Path, results: Path, console=None,
          plan: TrainPlan | None = None, verify: bool = False) -> TrainResult:
    """Train, or find the finished run with the same key (nothing trains). With `verify`, a
    finished run is trained again beside it and the two compared (verify_training)."""
    from bench.train.trainer import run_trainer

    plan = plan or plan_training(config_path, models_path, results)
    cfg, base, base_fp, rows, digests, key = (plan.cfg, plan.base, plan.base_fp, plan.rows,
                                              plan.digests, plan.key)
    store_path = results / "bench.sqlite"
    store = Store(store_path)
    run_dir = results / "train" / key[:16]
    earlier = store.training(key)
    if earlier and earlier["status"] == "done" and verify:
        again = run_trainer(cfg, base, dataset_rows(cfg, rows), results / "train" / f"{key[:16]}-verify",
                            console, fresh=True)
        fp, _ = _register(store, cfg, earlier["record"]["entry"], key)
        return TrainResult(cfg.output, fp, run_dir, True, again["steps"], 0.0,
                           reproduced=verify_training(earlier["record"]["entry"], again))
    if earlier and earlier["status"] == "done":
        record = earlier["record"]
        if cfg.merge and record["entry"]["adapter"] and not record.get("merged"):
            record["merged"] = _merge(record["entry"], run_dir)  # merge changes nothing learned
            store.finish_training(key, "done", record)
        fp, replaced = _register(store, cfg, record["entry"], key)
        return TrainResult(cfg.output, fp, run_dir, False, record["steps"], 0.0,
                           record.get("merged"), replaced)
    manifest = {"config": cfg.model_dump(), "config_file": str(config_path), "base": base.model_dump(),
                "base_fingerprint": base_fp, "data_sha256": digests, "rows": len(rows),
                **({"rows_read": plan.read.summary()} if plan.read else {}),
                "held_out_overlaps": [o.__dict__ for o in plan.overlaps], **environment()}
    store.start_training(key, cfg.output, str(run_dir), {"manifest": manifest})
    t0 = time.perf_counter()
    try:
        if plan.launch:
            from bench.scale.launch import launch_trainer

            outcome = launch_trainer(cfg, base, dataset_rows(cfg, rows), run_dir, plan.launch)
        else:
            outcome = run_trainer(cfg, base, dataset_rows(cfg, rows), run_dir, console)
    except BaseException as exc:  # kept as it was: a rerun resumes from the last checkpoint
        status = "failed" if isinstance(exc, Exception) else "interrupted"
        store.finish_training(key, status, {"manifest": manifest})
        raise
    wall = time.perf_counter() - t0
    entry = {"path": _absolute(outcome["path"]), "adapter": _absolute(outcome["adapter"]),
             "template": base.template,
             "chat_template": base.chat_template, "dtype": "float32", "device": base.device,
             "system": cfg.system or base.system, "trust_remote_code": base.trust_remote_code}
    record = {"manifest": manifest | {"ran": outcome["ran"]}, "log": outcome["log"],
              "samples": outcome["samples"], "steps": outcome["steps"], "wall_s": wall,
              "entry": entry, "plots": outcome["plots"], "merged": outcome.get("merged")}
    store.finish_training(key, "done", record)
    fp, replaced = _register(store, cfg, entry, key)
    return TrainResult(cfg.output, fp, run_dir, True, outcome["steps"], wall, record["merged"],
                       replaced)


def _absolute(path: str | None) -> str | None:
    """A local folder as an absolute path (the registry is read from any working directory);
    a Hub id as it is."""
    return str(Path(path).expanduser().resolve()) if path and looks_local(path) else path


def _merge(entry: dict, run_dir: Path) -> str:
    from bench.train.trainer import _tokenizer, merge

    spec = ModelSpec(name="merge", **entry)
    return merge(entry["path"], entry["adapter"], run_dir / "merged", _tokenizer(spec, entry["path"]))


def _register(store: Store, cfg: TrainConfig, entry: dict, key: str) -> tuple[str, str | None]:
    """Register the output name; (its fingerprint, the one the name meant before if another)."""
    from bench.backends.hf import HFBackend

    fingerprint = HFBackend(ModelSpec(name=cfg.output, **entry)).fingerprint
    before = store.trained_models().get(cfg.output, {}).get("fingerprint")
    store.register_model(cfg.output, fingerprint, entry, key)
    return fingerprint, before if before not in (None, fingerprint) else None



def verify_training(entry: dict, again: dict) -> dict:
    """The stored weights against a second training on the same inputs: the largest absolute
    difference over every tensor (CPU training is not bit-exact across runs: threads reorder
    float sums), and whether they are identical."""
    from safetensors.numpy import load_file

    def tensors(folder: str) -> dict:
        out = {}
        for f in sorted(Path(folder).glob("*.safetensors")):
            out.update(load_file(str(f)))
        return out

    stored = tensors(entry["adapter"] or entry["path"])
    fresh = tensors(again["adapter"] or again["path"])
    if set(stored) != set(fresh):
        return {"identical": False, "max_abs_diff": None, "tensors": len(stored),
                "note": "different tensor names"}
    diff = max((float(abs(stored[k].astype("float64") - fresh[k].astype("float64")).max())
                for k in stored if stored[k].size), default=0.0)
    return {"identical": diff == 0.0, "max_abs_diff": diff, "tensors": len(stored)}
