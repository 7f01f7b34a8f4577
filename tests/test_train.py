"""`bench train` on a tiny local model: SFT and DPO through TRL, what it leaves, and that
`bench run` scores the output by name."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")

from bench.config import ModelSpec  # noqa: E402
from bench.evaluate.suite import run_suite  # noqa: E402
from bench.store import Store  # noqa: E402
from bench.train.config import TrainConfig  # noqa: E402
from bench.train.registry import resolve  # noqa: E402
from bench.train.run import dataset_rows, read_data, train  # noqa: E402
from bench.train.trainer import build_trainer  # noqa: E402
from tests.fixtures.make_v1_store import DATA  # noqa: E402
from tests.helpers import write_models  # noqa: E402

DOMAIN = Path(__file__).parents[1] / "bench" / "domain" / "data"
STEPS = 3  # at least 2: LoRA's B starts at zero, so A moves from the second step on


def _rows(name: str, n: int) -> list[dict]:
    return [json.loads(line) for line in (DOMAIN / name).read_text("utf-8").splitlines()[:n]]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("train")
    write_models(root / "models.yaml", tiny=tiny_model_dir)
    for name, n in (("sft_train.jsonl", 8), ("pref_train.jsonl", 8), ("heldout_pairs.jsonl", 6)):
        (root / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                         for r in _rows(name, n)), encoding="utf-8")
    return root


def _config(root: Path, name: str, **keys) -> Path:
    body = {"quantization": "none", "max_steps": STEPS, "batch_size": 2, "gradient_accumulation": 1,
            "max_length": 256, "logging_steps": 1, "save_steps": 1, "save_total_limit": 5, "learning_rate": 5e-3,
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0}, **keys}
    path = root / f"{name}.yaml"
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def sft(workdir):
    cfg = _config(workdir, "sft", method="sft", base="tiny", output="tiny-sft",
                  data=["sft_train.jsonl"], evaluation_inputs=["宝宝两岁穿多大码？"],
                  evaluation_freq=2, validation_split=0.25)
    return train(cfg, workdir / "models.yaml", workdir / "results")


def test_sft_trains_every_lora_weight_and_no_base_weight(sft, workdir, tiny_model_dir):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    assert sft.trained and sft.steps == STEPS
    final = load_file(sft.run_dir / "adapter" / "adapter_model.safetensors")
    first = load_file(sft.run_dir / "checkpoints" / "checkpoint-1" / "adapter_model.safetensors")
    assert final and all("lora_" in k for k in final)
    for key, value in final.items():
        if "lora_B" in key:
            assert value.abs().sum() > 0, key  # moved off its zero start
        assert not torch.equal(value, first[key]), key  # still moving after step 1
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    tuned = PeftModel.from_pretrained(base, str(sft.run_dir / "adapter")).get_base_model()
    for key, value in tuned.state_dict().items():
        if "lora_" not in key:
            assert torch.equal(value, before[key.replace(".base_layer", "")]), key


def test_sft_run_leaves_its_log_samples_and_plots_in_the_store(sft, workdir):
    store = Store(workdir / "results" / "bench.sqlite")
    record = store.training(store.trained_models()["tiny-sft"]["train_key"])["record"]
    log = record["log"]
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3]
    assert all({"loss", "learning_rate", "grad_norm"} <= set(e) for e in log if "loss" in e)
    assert [e["step"] for e in log if "eval_loss" in e] == [1, 2, 3]  # the validation split's
    assert [s["step"] for s in record["samples"]] == [0, 2]  # before the first step, every 2
    assert record["manifest"]["ran"]["device"] == "cpu" and record["manifest"]["base_fingerprint"]
    assert record["manifest"]["config"]["output"] == "tiny-sft"
    assert all(Path(p).is_file() for p in record["plots"]) and record["plots"]


def test_answer_only_loss_and_one_rendering_for_training_and_evaluation(workdir, tiny_model_dir):
    """The collated labels leave the prompt out of the loss; the prompt a row trains on is, token
    for token, what the trained model is asked in evaluation (its system prompt added by the
    same rule)."""
    from bench.backends.hf import HFBackend

    plain = workdir / "no_system.jsonl"
    plain.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "system"},
                                        ensure_ascii=False) + "\n"
                             for r in _rows("sft_train.jsonl", 2)), encoding="utf-8")
    cfg = TrainConfig(method="sft", base="tiny", output="x", data=[str(plain)], system="你是童装店客服。",
                      quantization="none", max_length=256, batch_size=2)
    rows, *_ = read_data(cfg, workdir)
    spec = ModelSpec(name="tiny", path=str(tiny_model_dir), device="cpu", dtype="float32")
    trainer, tok, _, _ = build_trainer(cfg, spec, dataset_rows(cfg, rows), workdir / "mask")
    evaluated = HFBackend(spec.model_copy(update={"system": cfg.system}))
    batch = next(iter(trainer.get_train_dataloader()))
    for ids, labels, row in zip(batch["input_ids"], batch["labels"], rows, strict=True):
        asked = evaluated.render_chat([m for m in row.messages[:-1]])
        assert "你是童装店客服。" in asked
        prompt = tok(asked, add_special_tokens=False)["input_ids"]
        assert ids[: len(prompt)].tolist() == prompt  # trained on what evaluation asks
        assert (labels[: len(prompt)] == -100).all()  # no loss on system, question, template
        answer = tok.decode([t for t in labels[len(prompt):].tolist() if t != -100])
        assert answer[:30] == row.messages[-1]["content"][:30]  # the answer carries it (cut at
        # max_length 256 here)


def test_same_config_trains_nothing_and_the_name_resolves(sft, workdir):
    again = _config(workdir, "sft2", method="sft", base="tiny", output="tiny-sft-again",
                    data=["sft_train.jsonl"], evaluation_inputs=["宝宝两岁穿多大码？"],
                    evaluation_freq=2, validation_split=0.25,
                    logging_steps=2)  # the output name and logging change nothing learned
    result = train(again, workdir / "models.yaml", workdir / "results")
    assert not result.trained and result.run_dir == sft.run_dir
    spec = resolve("tiny-sft-again", workdir / "models.yaml", workdir / "results" / "bench.sqlite")
    assert spec.adapter == str(sft.run_dir / "adapter") and result.fingerprint == sft.fingerprint


def test_verify_trains_a_finished_run_again_beside_it_and_compares_the_weights(sft, workdir):
    """`bench pipeline --from train`: the cached training is done again, not reused."""
    cfg = workdir / "sft.yaml"
    result = train(cfg, workdir / "models.yaml", workdir / "results", verify=True)
    rep = result.reproduced
    assert result.trained and result.steps == sft.steps and result.fingerprint == sft.fingerprint
    assert rep["tensors"] > 0 and rep["max_abs_diff"] is not None
    assert rep["identical"] == (rep["max_abs_diff"] == 0.0)
    assert rep["max_abs_diff"] < 1e-2  # same seed and data: at most float-order noise
    assert (workdir / "results" / "train" / f"{sft.run_dir.name}-verify" / "adapter").is_dir()


def test_dpo_on_the_sft_output_and_bench_run_scores_both(sft, workdir):
    cfg = _config(workdir, "dpo", method="dpo", base="tiny-sft", output="tiny-dpo",
                  data=["pref_train.jsonl"], beta=0.1)
    dpo = train(cfg, workdir / "models.yaml", workdir / "results")
    assert dpo.trained and dpo.steps == STEPS
    store_path = workdir / "results" / "bench.sqlite"
    spec = resolve("tiny-dpo", workdir / "models.yaml", store_path)
    assert spec.path == str(dpo.run_dir / "base") and spec.adapter == str(dpo.run_dir / "adapter")
    store = Store(store_path)
    log = store.training(next(o["train_key"] for n, o in store.trained_models().items()
                              if n == "tiny-dpo"))["record"]["log"]
    assert all({"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"}
               <= set(e) for e in log if "loss" in e)
    suite = workdir / "pairs.yaml"
    suite.write_text("name: pairs\ntasks:\n  - {name: p, kind: preference, data: heldout_pairs.jsonl}\n",
                     encoding="utf-8")
    trained = {n: resolve(n, workdir / "models.yaml", store_path) for n in ("tiny-sft", "tiny-dpo")}
    runs = run_suite(suite, workdir / "models.yaml", ["tiny", "tiny-sft", "tiny-dpo"], DATA, None,
                     store, verbose=False, trained=trained)
    assert len({run["manifest"]["model_fingerprint"] for run in store.latest_runs("pairs")}) == 3
    assert all(r.model_calls > 0 and r.tasks[0].metrics["accuracy"]["n"] == 6 for r in runs)
    margins = [r.tasks[0].metrics["margin"]["value"] for r in runs]
    assert len(set(margins)) == 3  # the adapters change what the model prefers


@pytest.mark.parametrize("quantization,layer", [("nf4", "Linear4bit"), ("int8", "Linear8bitLt")])
def test_quantized_base_loads_as_bitsandbytes_layers_and_trains(workdir, tiny_model_dir,
                                                                quantization, layer):
    """Without CUDA, through bitsandbytes' CPU backend: the base's linear layers are quantized
    layers and the LoRA weights train."""
    cfg = TrainConfig(method="sft", base="tiny", output="x", data=["sft_train.jsonl"],
                      quantization=quantization, max_length=128, batch_size=2, max_steps=3,
                      learning_rate=5e-3, lora={"r": 4, "alpha": 8, "dropout": 0.0},
                      logging_steps=1, save_steps=100)
    rows, *_ = read_data(cfg, workdir)
    spec = ModelSpec(name="tiny", path=str(tiny_model_dir), device="cpu", dtype="float32")
    trainer, *_ = build_trainer(cfg, spec, dataset_rows(cfg, rows[:4]), workdir / quantization)
    quantized = [m for m in trainer.model.modules() if type(m).__name__ == layer]
    assert quantized
    if quantization == "nf4":
        assert all(m.weight.quant_type == "nf4" for m in quantized)
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert all(p.abs().sum() > 0 for n, p in trainer.model.named_parameters() if "lora_B" in n)


def test_merged_model_equals_base_plus_adapter(sft, workdir, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    cfg = _config(workdir, "sft-merge", method="sft", base="tiny", output="tiny-sft-merged",
                  data=["sft_train.jsonl"], evaluation_inputs=["宝宝两岁穿多大码？"],
                  evaluation_freq=2, validation_split=0.25, merge=True)
    result = train(cfg, workdir / "models.yaml", workdir / "results")
    assert not result.trained and result.merged  # merging changes nothing learned: no retraining
    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():
        want = PeftModel.from_pretrained(base, str(sft.run_dir / "adapter")).eval()(ids).logits
        got = AutoModelForCausalLM.from_pretrained(result.merged, dtype=torch.float32)(ids).logits
    assert torch.allclose(got, want, atol=1e-4)


def test_one_name_trained_twice_keeps_both(sft, workdir):
    other = _config(workdir, "sft-lr", method="sft", base="tiny", output="tiny-sft",
                    data=["sft_train.jsonl"], learning_rate=1e-3)
    result = train(other, workdir / "models.yaml", workdir / "results")
    assert result.trained and result.replaced == sft.fingerprint
    store = workdir / "results" / "bench.sqlite"
    assert resolve("tiny-sft", workdir / "models.yaml", store).adapter == str(result.run_dir / "adapter")
    pinned = resolve(sft.fingerprint[:12], workdir / "models.yaml", store)
    assert pinned.adapter == str(sft.run_dir / "adapter")


@pytest.mark.slow
def test_killed_training_resumes_from_its_checkpoint_to_the_same_adapter(workdir):
    """SIGKILL once the first checkpoint is written; the rerun resumes there (not from step 0;
    a checkpoint a kill cut short is passed over: see the next test) and ends
    with the adapter an uninterrupted run makes: equal to 1e-6 (seeded data order, dropout 0,
    optimizer and RNG state restored from the checkpoint, same thread policy)."""
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    from tests.helpers import ROOT

    cfg = _config(workdir, "resume", method="sft", base="tiny", output="tiny-resume",
                  data=["sft_train.jsonl"], max_steps=6, save_steps=2)
    cmd = [sys.executable, "-m", "bench.cli", "train", str(cfg), "--models",
           str(workdir / "models.yaml")]
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    killed = workdir / "killed"
    proc = subprocess.Popen([*cmd, "--results", str(killed)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list(killed.glob("train/*/checkpoints/checkpoint-2/trainer_state.json")):
        assert proc.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list(killed.glob("train/*/adapter"))  # it did not finish
    resumed = subprocess.run([*cmd, "--results", str(killed)], env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming tiny-resume from checkpoint-" in resumed.stderr  # it says so, and from where
    store = Store(killed / "bench.sqlite")
    record = store.training(store.trained_models()["tiny-resume"]["train_key"])["record"]
    assert "checkpoint-" in (record["manifest"]["ran"]["resumed_from"] or "")
    whole = workdir / "whole"
    assert subprocess.run([*cmd, "--results", str(whole)], env=env, capture_output=True,
                          timeout=300).returncode == 0
    a = load_file(next(killed.glob("train/*/adapter/adapter_model.safetensors")))
    b = load_file(next(whole.glob("train/*/adapter/adapter_model.safetensors")))
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6


def test_a_checkpoint_cut_short_by_a_kill_is_passed_over(tmp_path):
    from bench.train.trainer import last_checkpoint

    for step, state in ((2, "{}"), (4, '{"global_st'), (6, None), (10, "{}")):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(b"x")
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    assert last_checkpoint(tmp_path).endswith("checkpoint-10")
    (tmp_path / "checkpoint-10" / "trainer_state.json").unlink()
    assert last_checkpoint(tmp_path).endswith("checkpoint-2")  # 6: no state, 4: torn state
    assert last_checkpoint(tmp_path / "none") is None


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    """The demo's tiny candidate: its tokenizer knows the domain's training text."""
    from bench.backends.tiny import build_tiny_model
    from bench.demo import CANDIDATES, demo_corpus

    return build_tiny_model(tmp_path_factory.mktemp("demo-a"), corpus=demo_corpus(),
                            **CANDIDATES["tiny-a"])


@pytest.mark.slow
def test_dpo_on_the_demo_pairs_raises_held_out_preference(tmp_path, demo_model):
    """DPO on the domain's training pairs, scored on the held-out pairs (question and answer
    wordings and slot values training never saw): per-token preference accuracy rises over the
    base's, with a paired bootstrap CI above zero. (Summed log-likelihoods of this random tiny
    base prefer the answer with fewer tokens, which training cannot overcome here: see README.)"""
    from bench.metrics.stats import paired_difference

    write_models(tmp_path / "models.yaml", base=demo_model)
    cfg = _config(tmp_path, "dpo", method="dpo", base="base", output="base-dpo",
                  data=[str(DOMAIN / "pref_train.jsonl")], max_steps=None, epochs=3,
                  batch_size=8, max_length=512, learning_rate=5e-3, save_steps=1000,
                  lora={"r": 16, "alpha": 32, "dropout": 0.0})
    train(cfg, tmp_path / "models.yaml", tmp_path / "results")
    store_path = tmp_path / "results" / "bench.sqlite"
    suite = tmp_path / "held.yaml"
    suite.write_text(f"name: held\ntasks:\n  - {{name: pairs, kind: preference, data: "
                     f"{DOMAIN / 'heldout_pairs.jsonl'}}}\n", encoding="utf-8")
    store = Store(store_path)
    runs = run_suite(suite, tmp_path / "models.yaml", ["base", "base-dpo"], DATA, None, store,
                     verbose=False, trained={"base-dpo": resolve("base-dpo", tmp_path / "models.yaml",
                                                                 store_path)})
    per_token = [[r["scores"]["preference"]["values"]["accuracy_per_token"]
                  for _, r in store.run_items(run.run_id, "pairs-dev")] for run in runs]
    gain = paired_difference(per_token[1], per_token[0])
    print("held-out per-token preference accuracy", [sum(p) / len(p) for p in per_token], gain)
    assert gain["n"] == 150 and gain["ci_low"] > 0


def test_packed_rows_do_not_attend_across_each_other(workdir, tiny_model_dir):
    """packing: true is TRL's best-fit packing without padding: rows share one sequence with
    position ids restarting at each row, and transformers masks attention per row from those ids,
    so a packed row's logits are its own (what XTuner's pack_to_max_length does with its
    cumulative lengths)."""
    from transformers import AutoModelForCausalLM

    cfg = TrainConfig(method="sft", base="tiny", output="x", data=["sft_train.jsonl"],
                      quantization="none", max_length=256, batch_size=2, packing=True)
    rows, *_ = read_data(cfg, workdir)
    spec = ModelSpec(name="tiny", path=str(tiny_model_dir), device="cpu", dtype="float32")
    trainer, *_ = build_trainer(cfg, spec, dataset_rows(cfg, rows[:4]), workdir / "packed")
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["input_ids"].shape[0] == 1 and (batch["position_ids"][0] == 0).sum() >= 2
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    ids, pos = batch["input_ids"], batch["position_ids"]
    starts = (pos[0] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
    with torch.no_grad():
        # as TRL trains (its compute_loss passes use_cache=False; no attention mask): transformers
        # then reads the rows off the position ids
        packed = model(input_ids=ids, position_ids=pos, use_cache=False).logits[0]
        for a, b in zip(starts, starts[1:]):
            alone = model(input_ids=ids[:, a:b], use_cache=False).logits[0]
            assert torch.allclose(packed[a:b], alone, atol=1e-4)


@pytest.mark.parametrize("body,message", [
    ("method: sft\nbase: tiny\noutput: x\ndata: [a.jsonl]\nlearnig_rate: 1\n",
     "bad.yaml:5: learnig_rate: unknown key 'learnig_rate' (did you mean 'learning_rate'?"),
    ("method: sft\nbase: tiny\noutput: x\ndata: [a.jsonl]\nfinetuning: full\n",
     "finetuning: full trains every weight, which a quantized base cannot"),
    ("method: ppo\nbase: tiny\noutput: x\ndata: [a.jsonl]\n", "bad.yaml:1: method:"),
])
def test_bad_training_configs_name_file_line_and_key(tmp_path, body, message):
    from bench.errors import BenchError
    from bench.train.config import load_train_config

    (tmp_path / "bad.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(BenchError) as err:
        load_train_config(tmp_path / "bad.yaml")
    assert message in str(err.value)


def test_bad_training_rows_stop_before_a_model_loads(tmp_path, workdir):
    from tests.helpers import bench_cli

    rows = _rows("sft_train.jsonl", 4) + [{"instruction": "在吗？", "input": "", "output": ""}]
    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                for r in rows), encoding="utf-8")
    cfg = _config(tmp_path, "bad-rows", method="sft", base="tiny", output="x", data=["sft.jsonl"])
    proc = bench_cli("train", str(cfg), "--models", str(workdir / "models.yaml"),
                     "--results", str(tmp_path / "results"))
    assert proc.returncode == 2, proc.stderr
    assert f"{tmp_path / 'sft.jsonl'}:5" in proc.stderr and "'output' is empty" in proc.stderr
    assert not (tmp_path / "results").exists()  # refused before the store or a model


def test_training_reports_held_out_questions_found_in_its_data(workdir):
    from bench.train.run import plan_training

    copied = _rows("sft_train.jsonl", 1)[0]["instruction"]
    held = workdir / "held.jsonl"
    held.write_text("".join(json.dumps({"prompt": q, "chosen": "好的。", "rejected": "不知道。"},
                                       ensure_ascii=False) + "\n"
                            for q in (copied, "这件外套可以机洗吗？水温多少度合适，会不会缩水？")),
                    encoding="utf-8")
    cfg = _config(workdir, "contaminated", method="sft", base="tiny", output="x",
                  data=["sft_train.jsonl"], held_out=["held.jsonl"])
    plan = plan_training(cfg, workdir / "models.yaml", workdir / "results")
    assert [(o.id, o.train_ids) for o in plan.overlaps] == [("held.jsonl:L1", ("L1",))]
    clean = _config(workdir, "clean", method="sft", base="tiny", output="x", data=["sft_train.jsonl"],
                    held_out=[str(DOMAIN / "heldout_open.jsonl"), str(DOMAIN / "heldout_pairs.jsonl")])
    assert plan_training(clean, workdir / "models.yaml", workdir / "results").overlaps == []


def test_a_base_without_chat_template_is_refused_before_anything_is_written(tmp_path, workdir):
    from bench.backends.tiny import build_tiny_model
    from bench.errors import BenchError
    from bench.train.run import plan_training

    plain = build_tiny_model(tmp_path / "plain", seed=1, chat=False)
    write_models(tmp_path / "models.yaml", plain=plain)
    (tmp_path / "sft.jsonl").write_text((workdir / "sft_train.jsonl").read_text("utf-8"), "utf-8")
    cfg = _config(tmp_path, "plain", method="sft", base="plain", output="x", data=["sft.jsonl"])
    with pytest.raises(BenchError, match="model 'plain': its tokenizer has no chat template"):
        plan_training(cfg, tmp_path / "models.yaml", tmp_path / "results")
    assert not (tmp_path / "results").exists()
