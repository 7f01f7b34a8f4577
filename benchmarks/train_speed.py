"""`bench train` against a bare TRL script: the same SFT and DPO steps (printed, never asserted).

One tiny local Qwen3 model, the domain's training rows (the first --rows of sft_train.jsonl and
pref_train.jsonl), LoRA r=16, the same batch and steps. Each run is its own subprocess, so its peak
RSS (ru_maxrss) is its own; it reports a JSON line. Times exclude interpreter start-up and library
imports (both sides import torch, transformers, TRL, PEFT and datasets before the clock starts):
- bench: `bench.train.run.train(config, models.yaml, results)`, the whole call (config and data
  checks, fingerprints, store, train, save, log and plots), and TRL's own train_runtime;
- TRL: the script body (read and convert the rows, load tokenizer and model, build the trainer,
  train, save the adapter), and TRL's own train_runtime.
Goal: bench within 5% of bare TRL. Also nf4 (bitsandbytes, QLoRA) vs none peak memory, bench SFT.

    .venv/bin/python benchmarks/train_speed.py [--steps 20] [--batch 4] [--hidden 256] [--layers 4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
DOMAIN = ROOT / "bench" / "domain" / "data"
SYSTEM = "你是一家童装店的资深客服顾问。"  # the SFT rows carry it; the preference rows get it here
LORA = {"r": 16, "alpha": 16, "dropout": 0.1}
MAX_LENGTH = 512
MARK = "@@train_speed "  # the child's result line on stdout
CASES = (("sft", "none"), ("dpo", "none"), ("sft", "nf4"))
PACKAGES = ("bench", "trl", "peft", "transformers", "torch", "datasets", "accelerate", "bitsandbytes")


# ---------------------------------------------------------------- bare TRL (the child's body)

def bare_rows(path: Path, method: str, system: str | None) -> list[dict]:
    """Alpaca / LLaMA-Factory ranking rows as TRL's conversational rows, the plain way: user =
    instruction (+ "\\n" + input), the row's system prompt or else `system` first."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        user = row["instruction"] + (f"\n{row['input']}" if (row.get("input") or "").strip() else "")
        own = row.get("system")
        sys_prompt = own if own and own.strip() else system
        prompt = ([{"role": "system", "content": sys_prompt}] if sys_prompt else []) + \
            [{"role": "user", "content": user}]
        if method == "sft":
            out.append({"prompt": prompt, "completion": [{"role": "assistant", "content": row["output"]}]})
        else:
            out.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": row["chosen"]}],
                        "rejected": [{"role": "assistant", "content": row["rejected"]}]})
    return out


def _imports(quant: str, extra: tuple[str, ...] = ()) -> None:
    """What both sides import before the clock starts (TRL's trainers are lazy attributes)."""
    import importlib

    for name in ("torch", "transformers", "datasets", "peft", "trl", *extra) + \
            (("bitsandbytes",) if quant != "none" else ()):
        importlib.import_module(name)
    trl = sys.modules["trl"]
    for name in ("SFTConfig", "SFTTrainer", "DPOConfig", "DPOTrainer"):
        getattr(trl, name)


def run_trl(job: dict) -> dict:
    _imports(job["quant"])
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    method, out = job["method"], Path(job["work"])
    data = Dataset.from_list(bare_rows(Path(job["data"]), method, SYSTEM))
    tok = AutoTokenizer.from_pretrained(job["model"])
    extra = {}
    if job["quant"] == "nf4":
        extra["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(job["model"], dtype=torch.float32, **extra)
    footprint = model.get_memory_footprint()
    cpu = not torch.cuda.is_available()
    common = dict(
        output_dir=str(out / "checkpoints"), per_device_train_batch_size=job["batch"],
        gradient_accumulation_steps=1, learning_rate=2e-4, lr_scheduler_type="cosine",
        warmup_steps=0.03, num_train_epochs=3.0, max_steps=job["steps"], seed=42, data_seed=42,
        save_steps=job["steps"] + 1000, save_total_limit=2, logging_steps=job["steps"] + 1000,
        report_to=[], max_length=MAX_LENGTH, use_cpu=cpu, bf16=False, fp16=False,
        eval_strategy="no", per_device_eval_batch_size=job["batch"], disable_tqdm=False)
    if method == "sft":
        args, cls = SFTConfig(**common, packing=False, completion_only_loss=True), SFTTrainer
    else:
        args, cls = DPOConfig(**common, beta=0.1, loss_type=["sigmoid"], loss_weights=[1.0]), DPOTrainer
    lora = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                      target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = cls(model=model, args=args, train_dataset=data, processing_class=tok, peft_config=lora)
    t1 = time.perf_counter()
    trainer.train()
    t2 = time.perf_counter()
    trainer.save_model(str(out / "adapter"))
    wall = time.perf_counter() - t0
    log = trainer.state.log_history
    return {"wall_s": wall, "train_s": t2 - t1, "setup_s": t1 - t0,
            "train_runtime": log[-1].get("train_runtime"), "steps": trainer.state.global_step,
            "rss_before_kib": before, "footprint": footprint}


# ---------------------------------------------------------------- bench (the child's body)

def run_bench(job: dict) -> dict:
    _imports(job["quant"], ("bench.backends.hf", "bench.train.trainer"))  # train() imports them
    from bench.train.run import train

    parts = _timed_parts()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    work = Path(job["work"])
    t0 = time.perf_counter()
    result = train(Path(job["config"]), Path(job["models"]), work / "results")
    wall = time.perf_counter() - t0
    from bench.store import Store

    store = Store(work / "results" / "bench.sqlite")
    try:
        key = store.trained_models()[job["output"]]["train_key"]
        log = store.training(key)["record"]["log"]
    finally:
        store.close()
    return {"wall_s": wall, "train_runtime": log[-1].get("train_runtime"), "steps": result.steps,
            "trained": result.trained, "rss_before_kib": before, "parts": parts}


def _timed_parts() -> dict[str, float]:
    """Seconds spent in a few of bench's steps during train(): wrappers on module attributes
    that train() looks up at call time (a step that moves elsewhere just reads 0)."""
    import bench.train.plots
    import bench.train.run
    import bench.train.trainer
    from bench.backends.hf import HFBackend

    parts = {"data": 0.0, "backend": 0.0, "build": 0.0, "run_trainer": 0.0, "plots": 0.0,
             "train_call": 0.0}

    def timed(name, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                parts[name] += time.perf_counter() - t
        return wrapper

    def build(fn):
        def wrapper(*a, **kw):
            got = fn(*a, **kw)
            got[0].train = timed("train_call", got[0].train)  # the trainer's train()
            return got
        return timed("build", wrapper)

    if hasattr(bench.train.trainer, "build_trainer"):
        bench.train.trainer.build_trainer = build(bench.train.trainer.build_trainer)
    for module, attr, name in ((bench.train.run, "read_data", "data"),
                               (bench.train.trainer, "run_trainer", "run_trainer"),
                               (bench.train.plots, "plot_log", "plots")):
        if hasattr(module, attr):
            setattr(module, attr, timed(name, getattr(module, attr)))
    HFBackend.__init__ = timed("backend", HFBackend.__init__)
    if isinstance(HFBackend.__dict__.get("fingerprint"), property):
        HFBackend.fingerprint = property(timed("backend", HFBackend.__dict__["fingerprint"].fget))
    return parts


def child(job: dict) -> None:
    import torch

    got = (run_bench if job["side"] == "bench" else run_trl)(job)
    got["peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    got["torch_threads"] = torch.get_num_threads()
    print(MARK + json.dumps(got), flush=True)


# ---------------------------------------------------------------- the parent

def write_inputs(out: Path, model_dir: Path, n: int, steps: int, batch: int) -> dict:
    """Data files (the first n rows), models.yaml, one bench config per case."""
    files = {}
    for method, name in (("sft", "sft_train.jsonl"), ("dpo", "pref_train.jsonl")):
        lines = (DOMAIN / name).read_text(encoding="utf-8").splitlines()[:n]
        files[method] = out / f"{method}_rows.jsonl"
        files[method].write_text("\n".join(lines) + "\n", encoding="utf-8")
    models = out / "models.yaml"
    models.write_text(f"models:\n  - name: tiny\n    path: {model_dir}\n    device: cpu\n"
                      "    dtype: float32\n", encoding="utf-8")
    configs = {}
    for method, quant in CASES:
        body = {"method": method, "base": "tiny", "output": f"tiny-{method}-{quant}",
                "data": [files[method].name], "quantization": quant, "finetuning": "lora",
                "lora": LORA, "system": SYSTEM, "max_steps": steps, "batch_size": batch,
                "gradient_accumulation": 1, "logging_steps": steps + 1000,
                "save_steps": steps + 1000, "max_length": MAX_LENGTH}
        configs[method, quant] = out / f"{method}_{quant}.yaml"
        configs[method, quant].write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return {"data": files, "models": models, "configs": configs}


def same_rows(inputs: dict) -> dict[str, bool]:
    """Whether bench's rows (its readers + dataset_rows) equal the bare script's, per method."""
    from bench.train.config import load_train_config
    from bench.train.run import dataset_rows, read_data

    same = {}
    for method in ("sft", "dpo"):
        path = inputs["configs"][method, "none"]
        cfg = load_train_config(path)
        rows, _ = read_data(cfg, path.parent)
        same[method] = dataset_rows(cfg, rows) == bare_rows(inputs["data"][method], method, SYSTEM)
    return same


def spawn(job: dict) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the bench CLI sets it, for both sides
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    lines = [x for x in proc.stdout.splitlines() if x.startswith(MARK)]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
        raise SystemExit(f"child {job['side']} {job['method']} {job['quant']} failed "
                         f"(exit {proc.returncode})")
    return json.loads(lines[-1][len(MARK):])


def _version(name: str) -> str:
    from importlib import metadata

    if name == "bench":  # an editable install's metadata keeps the version it was installed at
        import bench

        return bench.__version__
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _mib(kib: float) -> float:
    return kib / 1024


def report(args, results: dict, same: dict, params: int, threads: set) -> None:
    print(f"model: tiny Qwen3 hidden={args.hidden} layers={args.layers} vocab=4000 params={params}  "
          f"rows={args.rows} batch={args.batch} steps={args.steps} max_length={MAX_LENGTH} "
          f"LoRA r={LORA['r']}  repeats={args.repeat} (best wall kept)  torch threads={sorted(threads)}")
    print(f"same training rows as bench: sft={same['sft']} dpo={same['dpo']}")
    print("\nwall = bench's whole train() call / the bare script's body (data, tokenizer, model, trainer,"
          "\ntrain, save); train = TRL's train_runtime on each side; peak = child's ru_maxrss")
    head = (f"{'method':<7}{'quant':<6}{'bench wall':>11}{'TRL wall':>10}{'ratio':>7}"
            f"{'bench train':>12}{'TRL train':>10}{'ratio':>7}{'bench MiB':>10}{'TRL MiB':>9}{'ratio':>7}")
    print(head)
    for method, quant in CASES:
        b, t = results["bench", method, quant], results["trl", method, quant]
        print(f"{method:<7}{quant:<6}{b['wall_s']:>11.2f}{t['wall_s']:>10.2f}"
              f"{b['wall_s'] / t['wall_s']:>7.3f}{b['train_runtime']:>12.2f}{t['train_runtime']:>10.2f}"
              f"{b['train_runtime'] / t['train_runtime']:>7.3f}{_mib(b['peak_kib']):>10.0f}"
              f"{_mib(t['peak_kib']):>9.0f}{b['peak_kib'] / t['peak_kib']:>7.3f}")
    print("\nwhere the wall goes (s): data = read, check, convert rows; fp = base and adapter"
          "\nfingerprints; build = tokenizer, model, trainer (TRL: with data); train = train_runtime;"
          "\ntr+ = trainer.train() beyond its train_runtime; save = adapter, log, samples; rest ="
          "\nconfig, store, registration, ...")
    print(f"{'side':<6}{'case':<9}{'data':>7}{'fp':>7}{'build':>7}{'train':>7}{'tr+':>7}{'save':>7}"
          f"{'plots':>7}{'rest':>7}{'wall':>7}")
    for method, quant in CASES:
        b, t = results["bench", method, quant], results["trl", method, quant]
        p = b["parts"]
        save = p["run_trainer"] - p["build"] - p["train_call"] - p["plots"]
        rest = b["wall_s"] - p["data"] - p["backend"] - p["run_trainer"]
        print(f"{'bench':<6}{method + '/' + quant:<9}{p['data']:>7.2f}{p['backend']:>7.2f}"
              f"{p['build']:>7.2f}{b['train_runtime']:>7.2f}{p['train_call'] - b['train_runtime']:>7.2f}"
              f"{save:>7.2f}{p['plots']:>7.2f}{rest:>7.2f}{b['wall_s']:>7.2f}")
        save = t["wall_s"] - t["setup_s"] - t["train_s"]
        print(f"{'TRL':<6}{method + '/' + quant:<9}{'-':>7}{'-':>7}{t['setup_s']:>7.2f}"
              f"{t['train_runtime']:>7.2f}{t['train_s'] - t['train_runtime']:>7.2f}{save:>7.2f}"
              f"{'-':>7}{'-':>7}{t['wall_s']:>7.2f}")

    print("\nnf4 vs none, SFT (peak = whole process; +train = peak minus the peak after imports;"
          "\nweights = the loaded base model's get_memory_footprint(), TRL side)")
    print(f"{'quant':<6}{'bench peak MiB':>15}{'+train MiB':>11}{'TRL peak MiB':>13}{'+train MiB':>11}"
          f"{'weights MiB':>12}{'bench wall':>11}")
    for quant in ("none", "nf4"):
        b, t = results["bench", "sft", quant], results["trl", "sft", quant]
        print(f"{quant:<6}{_mib(b['peak_kib']):>15.0f}{_mib(b['peak_kib'] - b['rss_before_kib']):>11.0f}"
              f"{_mib(t['peak_kib']):>13.0f}{_mib(t['peak_kib'] - t['rss_before_kib']):>11.0f}"
              f"{t['footprint'] / 2**20:>12.1f}{b['wall_s']:>11.2f}")
    b0, b4 = results["bench", "sft", "none"], results["bench", "sft", "nf4"]
    print(f"nf4/none: bench peak {b4['peak_kib'] / b0['peak_kib']:.3f}, bench wall "
          f"{b4['wall_s'] / b0['wall_s']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--rows", type=int, default=64, help="training rows used (per method)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side and case; best wall kept")
    parser.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))

    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    print("packages: " + "  ".join(f"{p} {_version(p)}" for p in PACKAGES))
    print(f"python {sys.version.split()[0]}  CPUs available {len(os.sched_getaffinity(0))}  "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    tmp = None if args.out else tempfile.TemporaryDirectory()
    out = Path(args.out or tmp.name)
    out.mkdir(parents=True, exist_ok=True)
    try:
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from bench.backends.tiny import build_tiny_model
        from bench.demo import demo_corpus

        model_dir = build_tiny_model(out / "model", seed=3, hidden_size=args.hidden,
                                     num_layers=args.layers, corpus=demo_corpus(), vocab_size=4000)
        from safetensors import safe_open

        with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
            params = sum(_numel(f.get_slice(k).get_shape()) for k in f.keys())
        inputs = write_inputs(out, model_dir, args.rows, args.steps, args.batch)
        same = same_rows(inputs)
        results: dict = {}
        t_all = time.perf_counter()
        for i in range(args.repeat):
            for method, quant in CASES:
                sides = ("bench", "trl") if i % 2 == 0 else ("trl", "bench")
                for side in sides:
                    work = out / "runs" / f"{side}_{method}_{quant}_{i}"
                    shutil.rmtree(work, ignore_errors=True)  # else bench finds the run done
                    job = {"side": side, "method": method, "quant": quant, "work": str(work),
                           "model": str(model_dir), "data": str(inputs["data"][method]),
                           "config": str(inputs["configs"][method, quant]),
                           "models": str(inputs["models"]), "output": f"tiny-{method}-{quant}",
                           "steps": args.steps, "batch": args.batch}
                    got = spawn(job)
                    print(f"  ran {side:<5} {method} {quant:<4} #{i + 1}: wall {got['wall_s']:.2f}s "
                          f"train {got['train_runtime']:.2f}s peak {_mib(got['peak_kib']):.0f} MiB",
                          flush=True)
                    best = results.get((side, method, quant))
                    if best is None or got["wall_s"] < best["wall_s"]:
                        results[side, method, quant] = got
        print(f"  all runs: {time.perf_counter() - t_all:.0f}s\n")
        report(args, results, same, params, {r["torch_threads"] for r in results.values()})
    finally:
        if tmp is not None:
            tmp.cleanup()


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


if __name__ == "__main__":
    main()
