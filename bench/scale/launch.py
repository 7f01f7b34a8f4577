"""`bench train CONFIG --launcher accelerate --num-processes N [--accelerate-config FILE]`: the
same training in N processes started by `accelerate launch`: DDP by default, or what an accelerate
config says (DeepSpeed ZeRO-2/3: `--accelerate-config zero2|zero3`, shipped beside this file).

- bench train (the driver) checks everything and owns the store, as in a local run. It writes the
  rows and settings into the run folder (launch/job.json), launches, and records the outcome the
  main process writes (launch/outcome.json) with the resolved launch command.
- Resume is the local one: the processes start from the run folder's last checkpoint.
- Without CUDA, `accelerate launch --cpu --num_processes N` starts one process (accelerate 1.15
  runs several CPU processes only through mpirun); bench launches with `--multi_gpu`, which starts
  N processes through torchrun, and they join over gloo on CPU.
- More processes mean a larger global batch (batch_size x gradient_accumulation x N): the number
  of processes is part of the training key when it is above 1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.config import ModelSpec
from bench.errors import BenchError
from bench.threads import THREADS_ENV, cpus_available
from bench.train.config import TrainConfig

SHIPPED = {"zero2": "deepspeed_zero2.yaml", "zero3": "deepspeed_zero3.yaml"}
CONFIGS = Path(__file__).parent / "accelerate"


@dataclass(frozen=True)
class Launch:
    num_processes: int = 2
    config_file: Path | None = None  # an accelerate config (DeepSpeed, FSDP, several machines)
    verbose: bool = False  # library output to the terminal, not launch/processes-rank<N>.log


def accelerate_config(name: str | None) -> Path | None:
    """A shipped config by name (zero2, zero3) or a file."""
    if name is None:
        return None
    path = CONFIGS / SHIPPED[name] if name in SHIPPED else Path(name).expanduser()
    if not path.is_file():
        raise BenchError(f"--accelerate-config {name}: no such file; give an accelerate config "
                         f"file or one of: {', '.join(SHIPPED)}")
    return path


def resolve(launch: Launch) -> dict:
    """The launch as accelerate resolves it: its own argument parser and validation over the
    config file, and for DeepSpeed the launcher's environment and the DeepSpeedPlugin built from
    it (deepspeed itself is not needed for this). {"distributed_type", "env", "deepspeed"}."""
    if launch.config_file is None:
        return {"distributed_type": "DDP", "env": {}, "deepspeed": None}
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    argv = ["--num_processes", str(launch.num_processes), "--config_file", str(launch.config_file)]
    try:
        args, defaults, _ = _validate_launch_command(
            launch_command_parser().parse_args([*argv, "-m", "bench.scale.train_worker", "job"]))
    except (OSError, ValueError, TypeError, KeyError, SystemExit) as exc:
        raise BenchError(f"{launch.config_file}: accelerate cannot use it: {exc}") from None
    kind = str(defaults.distributed_type).split(".")[-1]
    if kind != "DEEPSPEED":
        return {"distributed_type": kind, "env": {}, "deepspeed": None}
    from accelerate.utils import DeepSpeedPlugin
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
    _, env = prepare_deepspeed_cmd_env(args)
    env = {k: v for k, v in env.items() if k.startswith("ACCELERATE_")}
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        plugin = DeepSpeedPlugin()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"distributed_type": kind, "env": env,
            "deepspeed": {"zero_stage": plugin.zero_stage, "zero3_init": plugin.zero3_init_flag,
                          "config": plugin.deepspeed_config}}


def check(launch: Launch, cfg: TrainConfig) -> dict:
    """resolve(launch), refused where the combination cannot run: DeepSpeed without CUDA or
    without the package; 8-bit bitsandbytes under ZeRO-3 (PEFT supports 4-bit QLoRA there, with
    the 4-bit values packed in the model's dtype and zero3_init_flag)."""
    resolved = resolve(launch)
    ds = resolved["deepspeed"]
    if ds is None:
        return resolved
    where, stage = launch.config_file, ds["zero_stage"]
    if stage == 3 and cfg.quantization == "int8":
        raise BenchError(f"{where}: DeepSpeed ZeRO-3 with quantization: int8 is not supported by "
                         "PEFT/bitsandbytes; use quantization: nf4 (QLoRA) or none, or ZeRO-2")
    if stage == 3 and cfg.quantization == "nf4" and not ds["zero3_init"]:
        raise BenchError(f"{where}: QLoRA under ZeRO-3 needs zero3_init_flag: true in "
                         "deepspeed_config (PEFT's DeepSpeed guide)")
    import torch

    if not torch.cuda.is_available():
        raise BenchError(f"{where}: DeepSpeed (ZeRO-{stage}) needs CUDA GPUs, and this machine "
                         "has none; leave out --accelerate-config to train with DDP (gloo on CPU)")
    try:
        import deepspeed  # noqa: F401 - its absence is the message below
    except ModuleNotFoundError:
        raise BenchError(f"{where}: DeepSpeed is not installed; pip install deepspeed") from None
    return resolved


def command(launch: Launch, job: Path) -> list[str]:
    """The `accelerate launch` command line for the worker (bench.scale.train_worker)."""
    import torch

    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if launch.config_file:
        cmd += ["--config_file", str(launch.config_file)]
    elif launch.num_processes > 1:
        cmd += ["--multi_gpu"]  # torchrun: N processes (gloo without CUDA; see the module doc)
    cmd += ["--num_processes", str(launch.num_processes), "--num_machines", "1",
            "--main_process_port", str(_free_port())]
    if not launch.config_file:
        cmd += ["--mixed_precision", "no", "--dynamo_backend", "no"]
        if not torch.cuda.is_available() and launch.num_processes == 1:
            cmd += ["--cpu"]
    return cmd + ["-m", "bench.scale.train_worker", str(job)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_trainer(cfg: TrainConfig, spec: ModelSpec, rows: list[dict], run_dir: Path,
                   launch: Launch, fresh: bool = False) -> dict:
    """run_trainer's outcome, trained by N processes; `ran.launch` holds the resolved command."""
    from bench.train.trainer import _base_path

    if fresh:
        shutil.rmtree(run_dir, ignore_errors=True)
    folder = run_dir / "launch"
    folder.mkdir(parents=True, exist_ok=True)
    _base_path(spec, run_dir)  # an adapter base merged once here: the processes would race
    job, outcome = folder / "job.json", folder / "outcome.json"
    outcome.unlink(missing_ok=True)
    job.write_text(json.dumps({"config": cfg.model_dump(mode="json"), "base": spec.model_dump(mode="json"),
                               "rows": rows, "run_dir": str(run_dir), "verbose": launch.verbose},
                              ensure_ascii=False), encoding="utf-8")
    cmd = command(launch, job)
    threads = max(1, cpus_available() // launch.num_processes)  # the CPUs shared, not each taken
    env = {**os.environ, THREADS_ENV: os.environ.get(THREADS_ENV) or str(threads),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or str(threads)}
    with open(folder / "stdout.log", "a", encoding="utf-8") as stdout:
        done = subprocess.run(cmd, env=env, stdout=stdout)
    if done.returncode != 0 or not outcome.is_file():
        raise BenchError(f"the {launch.num_processes} training processes failed (exit "
                         f"{done.returncode}); their messages are above and in {folder}/"
                         "processes-rank*.log; the same command resumes from the last checkpoint")
    result = json.loads(outcome.read_text(encoding="utf-8"))
    result["ran"]["launch"] = {
        "command": cmd, "num_processes": launch.num_processes,
        "config_file": str(launch.config_file) if launch.config_file else None,
        "config": launch.config_file.read_text(encoding="utf-8") if launch.config_file else None}
    return result
