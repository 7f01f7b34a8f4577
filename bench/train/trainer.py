"""The one call into TRL: build the model (quantized base, merged SFT base for DPO), the trainer
config, and XTuner-style answer sampling; train (resuming from the last checkpoint); save."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from importlib import metadata
from pathlib import Path

import torch

from bench import threads
from bench.chat import render, with_system
from bench.config import ModelSpec
from bench.errors import BenchError
from bench.logs import import_bitsandbytes
from bench.train.config import TrainConfig

import_bitsandbytes()  # peft (every LoRA here) imports it; quietly: bench/logs.py

SAMPLE_TOKENS = 128  # new tokens per sampled answer


def _need_trl():
    try:
        import trl  # noqa: F401
    except ModuleNotFoundError:
        raise BenchError("bench train needs TRL; pip install 'bench[train]'") from None


def _tokenizer(spec: ModelSpec, path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=spec.trust_remote_code)
    if spec.chat_template:
        from bench.backends.hf import _read_template

        tok.chat_template = _read_template(spec.chat_template)
    if not tok.chat_template:
        raise BenchError(f"model '{spec.name}': its tokenizer has no chat template; bench trains "
                         "on conversations: set chat_template in its models.yaml entry")
    return tok


def _base_path(spec: ModelSpec, run_dir: Path) -> str:
    """The base weights to train on: the model itself, or (an adapter on a base: an earlier
    training output) base and adapter merged at full precision, saved once in the run folder."""
    if not spec.adapter:
        return spec.path
    merged = run_dir / "base"
    if not (merged / "config.json").is_file():
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(spec.path, dtype=torch.float32)
        model = PeftModel.from_pretrained(model, spec.adapter).merge_and_unload()
        model.save_pretrained(merged)
        _tokenizer(spec, spec.path).save_pretrained(merged)
    return str(merged)


def _model(cfg: TrainConfig, path: str, spec: ModelSpec):
    from transformers import AutoModelForCausalLM

    extra = {}
    if cfg.quantization != "none":
        from bench.train.quantize import bnb_config

        zero3 = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3"  # set by accelerate launch
        extra["quantization_config"] = bnb_config(cfg.quantization, torch.float32,
                                                  torch.float32 if zero3 else None)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                trust_remote_code=spec.trust_remote_code, **extra)


def _sampler(cfg: TrainConfig, tok, samples: list[dict]):
    """XTuner's EvaluateChatHook: greedy answers to the evaluation inputs before the first step
    and every evaluation_freq steps, kept with the step."""
    from transformers import TrainerCallback

    def sample(model, step: int) -> None:
        was_training = model.training
        model.eval()
        for question in cfg.evaluation_inputs:
            text = render(tok, with_system([{"role": "user", "content": question}], cfg.system))
            ids = tok(text, add_special_tokens=False, return_tensors="pt").to(model.device)
            with torch.no_grad():
                out = model.generate(**ids, max_new_tokens=SAMPLE_TOKENS, do_sample=False,
                                     pad_token_id=tok.pad_token_id)
            answer = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
            samples.append({"step": step, "input": question, "output": answer})
        model.train(was_training)

    class Sampler(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            if state.global_step == 0:
                sample(model, 0)

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % cfg.evaluation_freq == 0:
                sample(model, state.global_step)

    return Sampler()


def _progress(console):
    """A progress bar with steps, the latest loss and time left (instead of TRL's tqdm and its
    printed log dicts; the whole log goes to the store)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from transformers import TrainerCallback

    class Bar(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                                console=console)
            self.bar.start()
            self.task = self.bar.add_task("", total=state.max_steps, completed=state.global_step,
                                          loss="—")

        def on_step_end(self, args, state, control, **kw):
            self.bar.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.bar.update(self.task, loss=f"{logs['loss']:.4f}")

        def on_train_end(self, args, state, control, **kw):
            self.bar.stop()

    return Bar()


def _args(cfg: TrainConfig, out: Path, has_eval: bool, cpu: bool, quiet: bool = False):
    from trl import DPOConfig, SFTConfig

    common = dict(
        # TRL defaults gradient_checkpointing to True, transformers 5 renamed it (the old name
        # warns): the same setting under its new name
        activation_checkpointing=True,
        output_dir=str(out), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation, learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.scheduler, warmup_steps=cfg.warmup_ratio,  # a float < 1: a ratio
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps or -1, seed=cfg.seed,
        data_seed=cfg.seed, save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps, report_to=[], max_length=cfg.max_length,
        use_cpu=cpu, bf16=False, fp16=False,  # TRL on CPU: use_cpu alone trains in bf16
        eval_strategy="steps" if has_eval else "no", eval_steps=cfg.logging_steps,
        per_device_eval_batch_size=cfg.batch_size, disable_tqdm=quiet,
        ddp_find_unused_parameters=False)  # several processes: every weight takes part in a step
    if cfg.method == "sft":
        return SFTConfig(**common, packing=cfg.packing, completion_only_loss=not cfg.train_on_prompt)
    losses = list(cfg.loss_type) + (["sft"] if cfg.sft_weight else [])
    weights = [1.0] * len(cfg.loss_type) + ([cfg.sft_weight] if cfg.sft_weight else [])
    return DPOConfig(**common, beta=cfg.beta, loss_type=losses, loss_weights=weights)


def build_trainer(cfg: TrainConfig, spec: ModelSpec, rows: list[dict], run_dir: Path, console=None):
    """(TRL trainer, tokenizer, base weights path, the list sampled answers go to); with a rich
    `console`, bench's progress bar instead of TRL's."""
    _need_trl()
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOTrainer, SFTTrainer

    run_dir.mkdir(parents=True, exist_ok=True)
    cpu = not torch.cuda.is_available()
    path = _base_path(spec, run_dir)
    tok = _tokenizer(spec, path if spec.adapter else spec.path)
    data = Dataset.from_list(rows)
    evaluation = None
    if cfg.validation_split:
        split = data.train_test_split(test_size=cfg.validation_split, seed=cfg.seed)
        data, evaluation = split["train"], split["test"]
    model = _model(cfg, path, spec)
    peft = None
    if cfg.finetuning == "lora":
        peft = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                          target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    samples: list[dict] = []
    trainer_cls = SFTTrainer if cfg.method == "sft" else DPOTrainer
    callbacks = [_sampler(cfg, tok, samples)] if cfg.evaluation_inputs else []
    callbacks += [_progress(console)] if console is not None else []
    args = _args(cfg, run_dir / "checkpoints", evaluation is not None, cpu, console is not None)
    trainer = trainer_cls(model=model, args=args, train_dataset=data, eval_dataset=evaluation,
                          processing_class=tok, peft_config=peft, callbacks=callbacks)
    if console is not None:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # the log dicts go to the store, not the screen
    return trainer, tok, path, samples


def run_trainer(cfg: TrainConfig, spec: ModelSpec, rows: list[dict], run_dir: Path,
                console=None, fresh: bool = False) -> dict | None:
    """Train into run_dir, resuming from its last checkpoint (`fresh`: from scratch). In a
    launch of several processes (bench/scale/launch.py) every one trains and the main one saves
    and returns the outcome; the others return None."""
    if fresh:
        shutil.rmtree(run_dir, ignore_errors=True)
    thread_policy = threads.apply() if not torch.cuda.is_available() else None
    trainer, tok, path, samples = build_trainer(cfg, spec, rows, run_dir, console)
    peft = cfg.finetuning == "lora"
    checkpoints = run_dir / "checkpoints"
    last = last_checkpoint(checkpoints)
    if last and console is not None and trainer.is_world_process_zero():
        console.print(f"resuming {cfg.output} from {Path(last).name} (an earlier run of it was "
                      f"stopped; {run_dir})", soft_wrap=True, markup=False)
    with warnings.catch_warnings():
        # TRL 1.16's DPOTrainer toggles checkpointing through aliases transformers 5 deprecated
        # (model.is_gradient_checkpointing, gradient_checkpointing_disable/_enable in
        # trl/models/utils.py disable_gradient_checkpointing): not bench's calls
        warnings.filterwarnings("ignore", category=FutureWarning, message=r"`(is_)?gradient_"
                                r"checkpointing(_enable|_disable)?` is deprecated")
        trainer.train(resume_from_checkpoint=last)
    saved = run_dir / ("adapter" if peft else "model")
    trainer.save_model(str(saved))  # every process takes part (ZeRO-3 gathers); the main one writes
    if not trainer.is_world_process_zero():
        return None
    if not peft:
        tok.save_pretrained(saved)
    log = trainer.state.log_history
    (run_dir / "log.json").write_text(json.dumps(log, indent=1), encoding="utf-8")
    (run_dir / "samples.json").write_text(json.dumps(samples, ensure_ascii=False, indent=1),
                                          encoding="utf-8")
    merged = merge(path, str(saved), run_dir / "merged", tok) if cfg.merge and peft else None
    from bench.train.plots import plot_log

    return {
        "path": path if peft else str(saved), "adapter": str(saved) if peft else None,
        "log": log, "samples": samples, "steps": trainer.state.global_step,
        "plots": plot_log(log, run_dir), "merged": merged,
        "ran": {"device": "cuda" if torch.cuda.is_available() else "cpu", "dtype": "float32",
                "quantization": cfg.quantization, "threads": thread_policy, "resumed_from": last,
                "processes": trainer.args.world_size,
                "packages": {p: _version(p) for p in ("trl", "peft", "bitsandbytes", "transformers",
                                                      "torch", "datasets")}},
    }


def last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint: one a kill did not cut short while it was written (the
    Trainer writes trainer_state.json last)."""
    def complete(path: Path) -> bool:
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return path.name.split("-")[-1].isdigit()

    done = [p for p in folder.glob("checkpoint-*") if complete(p)]
    return str(max(done, key=lambda p: int(p.name.split("-")[-1]))) if done else None


def merge(base: str, adapter: str, out: Path, tokenizer) -> str:
    """Base and adapter merged into one model folder, at full precision (as people deploy it;
    a quantized base could not take the adapter's weights)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    PeftModel.from_pretrained(model, adapter).merge_and_unload().save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"
