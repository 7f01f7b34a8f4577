"""`bench train --launcher accelerate`: two CPU processes (DDP over gloo) train an adapter that
`bench run` scores; the shipped DeepSpeed configs resolve through accelerate and are refused here
(no CUDA) with one clear message, as are combinations PEFT does not support."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.scale.launch import Launch, accelerate_config, check, resolve
from bench.train.config import TrainConfig
from bench.train.run import train_key
from tests.helpers import bench_cli, write_models, write_suite

pytest.importorskip("trl")

DOMAIN = Path(__file__).parents[1] / "bench" / "domain" / "data"


def test_two_cpu_processes_train_an_adapter_that_bench_run_scores(tmp_path, tiny_model_dir):
    write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)
    rows = DOMAIN.joinpath("sft_train.jsonl").read_text("utf-8").splitlines()[:16]
    (tmp_path / "sft.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "sft.yaml").write_text(json.dumps({
        "method": "sft", "base": "tiny", "output": "tiny-ddp", "data": ["sft.jsonl"],
        "quantization": "nf4", "max_steps": 4, "batch_size": 2, "gradient_accumulation": 1,
        "max_length": 256, "logging_steps": 1, "save_steps": 2, "learning_rate": 5e-3,
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}), encoding="utf-8")
    results = tmp_path / "results"
    done = bench_cli("train", str(tmp_path / "sft.yaml"), "--models", str(tmp_path / "models.yaml"),
                     "--results", str(results), "--launcher", "accelerate", "--num-processes", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trained 'tiny-ddp' in 4 steps" in done.stdout
    con = sqlite3.connect(results / "bench.sqlite")
    try:
        [(record, run_dir)] = con.execute("SELECT record, run_dir FROM trainings").fetchall()
    finally:
        con.close()
    ran = json.loads(record)["manifest"]["ran"]
    assert ran["processes"] == 2 and ran["launch"]["num_processes"] == 2
    command = ran["launch"]["command"]
    assert command[1:4] == ["-m", "accelerate.commands.launch", "--multi_gpu"]
    assert command[command.index("--num_processes") + 1] == "2"
    launch = Path(run_dir) / "launch"
    assert {p.name for p in launch.glob("processes-rank*.log")} == {"processes-rank0.log",
                                                                     "processes-rank1.log"}
    assert (Path(run_dir) / "adapter" / "adapter_model.safetensors").is_file()
    suite = write_suite(tmp_path / "s.yaml", "s", ["eprstmt"])
    scored = bench_cli("run", "--suite", str(suite), "--models", str(tmp_path / "models.yaml"),
                       "--model", "tiny-ddp", "--results", str(results), "--data-dir",
                       str(Path(__file__).parents[1] / "bench" / "tasks" / "demo_data"))
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert "tiny-ddp" in scored.stdout and "eprstmt-dev" in scored.stdout


def test_processes_are_part_of_the_training_key():
    cfg = TrainConfig(method="sft", base="b", output="o", data=["x.jsonl"])
    one, two = (train_key(cfg, "fp", ["d"], n) for n in (1, 2))
    assert one == train_key(cfg, "fp", ["d"]) and one != two  # one process: the keys of before


@pytest.mark.parametrize("name,stage", [("zero2", 2), ("zero3", 3)])
def test_shipped_deepspeed_configs_resolve_through_accelerate(name, stage):
    resolved = resolve(Launch(2, accelerate_config(name)))
    assert resolved["distributed_type"] == "DEEPSPEED"
    assert resolved["deepspeed"]["zero_stage"] == stage
    assert resolved["env"]["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == str(stage)
    assert resolved["deepspeed"]["zero3_init"] is (stage == 3)  # QLoRA under ZeRO-3 needs it


def test_unsupported_combinations_are_refused_with_one_message(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    nf4 = TrainConfig(method="sft", base="b", output="o", data=["x.jsonl"])
    int8 = nf4.model_copy(update={"quantization": "int8"})
    with pytest.raises(BenchError, match="ZeRO-3 with quantization: int8 is not supported"):
        check(Launch(2, accelerate_config("zero3")), int8)
    no_init = tmp_path / "z3.yaml"
    no_init.write_text(accelerate_config("zero3").read_text().replace(
        "zero3_init_flag: true", "zero3_init_flag: false"), encoding="utf-8")
    with pytest.raises(BenchError, match="needs zero3_init_flag: true"):
        check(Launch(2, no_init), nf4)
    with pytest.raises(BenchError, match="needs CUDA GPUs"):
        check(Launch(2, accelerate_config("zero2")), int8)
    with pytest.raises(BenchError, match="no such file"):
        accelerate_config("zero4")


def test_launcher_options_are_checked_before_anything_runs(tmp_path):
    for args, said in ((["--launcher", "slurm"], "choose local or accelerate"),
                       (["--accelerate-config", "zero2"], "needs --launcher accelerate")):
        done = bench_cli("train", str(tmp_path / "none.yaml"), *args, "--results", str(tmp_path / "r"))
        assert done.returncode == 2 and said in done.stderr
        assert not (tmp_path / "r").exists()
