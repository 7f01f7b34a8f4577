"""`trust_remote_code: true` runs Python code from a model's folder: every command that loads a
model refuses such an entry until the user also passes --trust-remote-code, before any code of
the folder runs, naming the entry and the flag (train, pipeline and demo used to run it unasked)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import bench_cli

CONFIG_CODE = '''import os
from pathlib import Path

from transformers import Qwen3Config

Path(os.environ["BENCH_TEST_REMOTE_MARKER"]).write_text("the folder's code ran")


class CustomConfig(Qwen3Config):
    pass
'''
MODEL_CODE = '''from transformers import Qwen3ForCausalLM

from .configuration_custom import CustomConfig


class CustomForCausalLM(Qwen3ForCausalLM):
    config_class = CustomConfig
'''


@pytest.fixture(scope="module")
def remote(tmp_path_factory, tiny_model_dir):
    """A tiny model whose folder ships modelling code (config.json auto_map) that leaves a
    marker file when it is imported; a models file whose entry trusts it; an SFT config and a
    pipeline on it."""
    root = tmp_path_factory.mktemp("remote")
    model = root / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "configuration_custom.py").write_text(CONFIG_CODE, encoding="utf-8")
    (model / "modeling_custom.py").write_text(MODEL_CODE, encoding="utf-8")
    config = json.loads((model / "config.json").read_text("utf-8"))
    config["auto_map"] = {"AutoConfig": "configuration_custom.CustomConfig",
                          "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"}
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (root / "models.yaml").write_text(
        f"models:\n  - name: custom\n    path: {model}\n    device: cpu\n    dtype: float32\n"
        "    trust_remote_code: true\n", encoding="utf-8")
    data = Path(__file__).parents[1] / "bench" / "domain" / "data" / "sft_train.jsonl"
    (root / "sft.jsonl").write_text("".join(data.read_text("utf-8").splitlines(True)[:4]), "utf-8")
    (root / "sft.yaml").write_text(json.dumps({
        "method": "sft", "base": "custom", "output": "custom-sft", "data": ["sft.jsonl"],
        "quantization": "none", "max_steps": 1, "batch_size": 2, "max_length": 128,
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}), encoding="utf-8")
    suites = Path(__file__).parents[1] / "suites"
    (root / "loop.yaml").write_text(
        f"name: remote-loop\nmodels: models.yaml\nselect: {{suite: {suites}/fewclue-dev-gen.yaml, "
        "candidates: [custom], limit: 2}\ntrain: {configs: [sft.yaml]}\n"
        f"evaluate: {{suites: [{suites}/kids-heldout.yaml], limit: 2}}\n"
        f"gate: {{policy: {suites}/gate.yaml}}\n", encoding="utf-8")
    return root


def _bench(remote: Path, *args: str):
    marker = remote / "marker.txt"
    marker.unlink(missing_ok=True)
    done = bench_cli(*args, cwd=remote, env={"BENCH_TEST_REMOTE_MARKER": str(marker),
                                             "BENCH_TRUST_REMOTE_CODE": ""})
    return done, marker.exists()


@pytest.mark.parametrize("command", [
    ["train", "sft.yaml", "--models", "models.yaml"],
    ["pipeline", "loop.yaml"],  # its models file is the pipeline's `models`
    ["run", "--suite", "SUITE", "--model", "custom", "--limit", "1", "--models", "models.yaml"],
    ["serve", "custom", "--port", "0", "--models", "models.yaml"],
])
def test_every_command_refuses_a_remote_code_entry_without_the_opt_in(remote, command):
    suite = Path(__file__).parents[1] / "suites" / "fewclue-dev-gen.yaml"
    args = [str(suite) if a == "SUITE" else a for a in command]
    done, ran = _bench(remote, *args, "--results", "results")
    assert done.returncode == 2, done.stderr
    assert "model 'custom' sets trust_remote_code: true" in done.stderr
    assert "--trust-remote-code" in done.stderr
    assert not ran, "the folder's code ran before the user opted in"
    if command[0] in ("train", "pipeline"):  # refused before anything was written
        assert not (remote / "results" / "runs").exists()
        store = remote / "results" / "bench.sqlite"
        if store.exists():
            import sqlite3

            con = sqlite3.connect(store)
            assert con.execute("SELECT COUNT(*) FROM trainings").fetchone()[0] == 0
            assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
            con.close()


def test_pipeline_names_the_key_that_brought_the_entry(remote):
    done, _ = _bench(remote, "pipeline", "loop.yaml", "--results", "results")
    assert done.returncode == 2 and "loop.yaml: select.candidates: model 'custom'" in done.stderr


def test_train_with_the_opt_in_runs_the_code_warns_and_trains(remote):
    done, ran = _bench(remote, "train", "sft.yaml", "--models", "models.yaml", "--results",
                       "results-trusted", "--trust-remote-code")
    assert done.returncode == 0, done.stderr
    assert ran, "opted in: the folder's code is what loads the model"
    assert "base 'custom' runs the Python code in" in done.stderr
    assert "trained 'custom-sft' in 1 steps" in done.stdout
