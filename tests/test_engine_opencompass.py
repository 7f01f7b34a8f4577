"""The OpenCompass engine, and bench's parity with OpenCompass itself on the real FewCLUE dev sets.

OpenCompass 0.5.4 runs in its own venv (`make oc-venv`; .ci/run builds it). Without that venv or
the shared data these tests skip with the reason, and under CI=true they fail. OpenCompass starts
slowly, so each mode runs once for all three tasks and every model (module-scoped fixtures).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.backends import get_backend
from bench.backends.base import oc_batched_ce
from bench.config import ModelSpec, TaskEntry
from bench.engines import build_engine_task
from bench.engines.opencompass import (
    OCModel,
    OpenCompassTask,
    build,
    local_data_path,
    oc_install,
    run_opencompass,
)
from bench.errors import BenchError
from bench.evaluate.suite import run_suite
from bench.store import Store
from tests.helpers import require, shared_data_dir

TASKS = ("bustm", "ocnli_fc", "eprstmt")
MAX_NEW = 16  # the same in OpenCompass and bench; early_stop off so raw outputs compare whole



@pytest.fixture(scope="module")
def data() -> Path:
    data = shared_data_dir()
    require((data / "fewclue").is_dir(), f"FewCLUE data not found at {data} (set BENCH_TEST_DATA_DIR)")
    return data


@pytest.fixture(scope="module")
def oc():
    try:
        return oc_install()
    except BenchError as exc:
        require(False, str(exc))


def _models_file(path: Path, model_dir: Path, templates: tuple[str, ...]) -> Path:
    lines = ["models:"]
    for t in templates:
        lines += [f"  - name: tiny-{t}", f"    path: {model_dir}", "    device: cpu",
                  "    dtype: float32", f"    template: {t}",
                  f"    generation: {{max_new_tokens: {MAX_NEW}, early_stop: false}}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _spec(model_dir: Path, template: str) -> ModelSpec:
    return ModelSpec(name=f"tiny-{template}", path=str(model_dir), device="cpu", dtype="float32",
                     template=template, generation={"max_new_tokens": MAX_NEW, "early_stop": False})


def _native(tmp: Path, data: Path, model_dir: Path, mode: str, templates: tuple[str, ...]) -> dict:
    """bench's own scoring: {template: {task: [record, ...]}} in dataset order."""
    suite = tmp / f"native-{mode}.yaml"
    suite.write_text(f"name: native-{mode}\nmode: {mode}\nsplit: dev\ntasks: [{', '.join(TASKS)}]\n",
                     encoding="utf-8")
    store = Store(tmp / f"native-{mode}.sqlite")
    runs = run_suite(suite, _models_file(tmp / f"models-{mode}.yaml", model_dir, templates), None,
                     data, None, store)
    return {t: {task: store.run_records(run.run_id, f"{task}-dev") for task in TASKS}
            for t, run in zip(templates, runs, strict=True)}


def _oc_tasks(data: Path, mode: str) -> list[OpenCompassTask]:
    return [build(TaskEntry(name=f"FewCLUE_{t}_{mode}", engine="opencompass", split="dev"), data)
            for t in TASKS]


@pytest.fixture(scope="module")
def gen_runs(oc, data, tiny_model_dir, tmp_path_factory):
    templates = ("base", "chat")
    native = _native(tmp_path_factory.mktemp("gen"), data, tiny_model_dir, "gen", templates)
    models = [OCModel(_spec(tiny_model_dir, t), get_backend(_spec(tiny_model_dir, t)), 8, abbr=t)
              for t in templates]
    ours = run_opencompass(_oc_tasks(data, "gen"), models)
    return native, ours, {"base": None, "chat": models[1].backend.tokenizer}


@pytest.fixture(scope="module")
def ppl_runs(oc, data, tiny_model_dir, tmp_path_factory):
    native = _native(tmp_path_factory.mktemp("ppl"), data, tiny_model_dir, "ppl", ("base",))["base"]
    backend = get_backend(_spec(tiny_model_dir, "base"))
    models = [OCModel(_spec(tiny_model_dir, "base"), backend, bs, abbr=f"bs{bs}") for bs in (1, 8)]
    return native, run_opencompass(_oc_tasks(data, "ppl"), models), backend


def _fed(oc_input: str, tokenizer) -> str:
    """The text OpenCompass feeds the model: its base prompt as is; for chat, its parsed PromptList
    through _convert_chat_messages (drop empty, merge same-role neighbours with '\\n') and the
    tokenizer's chat template."""
    if tokenizer is None:
        return oc_input
    messages: list[dict] = []
    for m in json.loads(oc_input):
        role = {"HUMAN": "user", "BOT": "assistant", "SYSTEM": "system"}[m["role"]]
        if not m["prompt"]:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + m["prompt"]
        else:
            messages.append({"role": role, "content": m["prompt"]})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@pytest.mark.slow
@pytest.mark.parametrize("template", ["base", "chat"])
def test_gen_matches_opencompass_on_every_sample(gen_runs, template):
    native, ours, tokenizers = gen_runs
    for task, result in zip(TASKS, ours[template], strict=True):
        mine = native[template][task]
        assert [r["id"] for r in result.records] == [r["id"] for r in mine], task
        assert len(mine) == 160
        for oc_rec, rec in zip(result.records, mine, strict=True):
            where = f"{template} {task} {rec['id']}"
            assert _fed(oc_rec["input"], tokenizers[template]) == rec["input"], where
            assert oc_rec["prediction"] == rec["prediction"], where  # raw generated text
            assert oc_rec["answer"] == rec["answer"], where  # first_capital_postprocess
            assert oc_rec["target"] == rec["target"], where
        acc = sum(r["score"] for r in mine) / len(mine)
        assert result.metrics["accuracy"]["value"] == pytest.approx(acc, abs=1e-4), task
        assert result.metrics["accuracy"]["n"] == 160


@pytest.mark.slow
def test_ppl_matches_opencompass_at_batch_size_1(ppl_runs):
    native, ours, _ = ppl_runs
    for task, result in zip(TASKS, ours["bs1"], strict=True):
        mine = native[task]
        assert [r["id"] for r in result.records] == [r["id"] for r in mine], task
        for oc_rec, rec in zip(result.records, mine, strict=True):
            where = f"{task} {rec['id']}"
            oc_ce = [c["ce"] for c in oc_rec["logprobs"]]
            ce = [c["ce"] for c in rec["logprobs"]]  # bench candidates follow OpenCompass's labels
            assert ce == pytest.approx(oc_ce, abs=1e-4), where
            assert oc_ce.index(min(oc_ce)) == ce.index(min(ce)), where  # same argmin label
            assert oc_rec["score"] == rec["score"], where
        acc = sum(r["score"] for r in mine) / len(mine)
        assert result.metrics["accuracy"]["value"] == pytest.approx(acc, abs=1e-4), task


@pytest.mark.slow
def test_ppl_at_batch_size_8_is_the_padded_formula(ppl_runs):
    """OpenCompass's batched ppl counts left pads; bench reproduces it with oc_batched_ce."""
    native, ours, backend = ppl_runs
    for task, result in zip(TASKS, ours["bs8"], strict=True):
        expected = oc_batched_ce([r["logprobs"] for r in native[task]], 8, backend.oc_pad_nll)
        for oc_rec, want in zip(result.records, expected, strict=True):
            assert [c["ce"] for c in oc_rec["logprobs"]] == pytest.approx(want, abs=1e-4), (
                f"{task} {oc_rec['id']}")


@pytest.mark.slow
def test_engine_runs_inside_bench_and_caches(oc, data, tiny_model_dir, tmp_path, monkeypatch):
    suite = tmp_path / "oc.yaml"
    suite.write_text("name: oc\ntasks:\n  - {engine: opencompass, name: FewCLUE_bustm_gen, split: dev, "
                     "limit: 20}\n", encoding="utf-8")
    models = _models_file(tmp_path / "models.yaml", tiny_model_dir, ("base",))
    store = Store(tmp_path / "bench.sqlite")
    first = run_suite(suite, models, None, data, None, store)[0]
    result = first.tasks[0]
    assert result.task == "oc:FewCLUE_bustm_gen-dev"
    assert result.metrics["accuracy"]["n"] == 20
    assert result.metrics["engine"]["accuracy"]["value"] == pytest.approx(
        result.metrics["accuracy"]["value"])
    records = store.run_records(first.run_id, result.task)
    assert [r["id"] for r in records] == [f"L{i}" for i in range(1, 21)]
    assert all(r["input"].startswith("语句一：") and r["target"] in "AB" for r in records)

    def refuse(*_a, **_k):
        raise AssertionError("OpenCompass ran again for a cached task")

    monkeypatch.setattr(OpenCompassTask, "run", refuse)
    second = run_suite(suite, models, None, data, None, store)[0]
    assert second.model_calls == 0
    assert second.tasks[0].timings["computed"] == 0 and second.tasks[0].timings["cached"] == 20
    assert second.tasks[0].metrics["accuracy"] == result.metrics["accuracy"]


def test_unknown_config_suggests(oc, data):
    with pytest.raises(BenchError, match="did you mean 'FewCLUE_bustm_gen'"):
        build_engine_task(TaskEntry(name="FewCLUE_bustm_gne", engine="opencompass"), data)


def test_missing_venv_says_make_oc_venv(tmp_path, monkeypatch, data):
    monkeypatch.setenv("BENCH_OC_VENV", str(tmp_path / "nowhere"))
    with pytest.raises(BenchError, match="make oc-venv"):
        build(TaskEntry(name="FewCLUE_bustm_gen", engine="opencompass"), data)


def test_split_and_paths(oc, data):
    task = build(TaskEntry(name="FewCLUE_ocnli_fc_ppl", engine="opencompass", split="test", limit=5), data)
    assert task.meta["abbrs"] == ["ocnli_fc-test"] and task.mode == "ppl" and task.meta["n"] == 5
    assert task.paths == {"./data/FewCLUE/ocnli/test_public.json":
                          str(data / "fewclue" / "ocnli" / "test_public.json")}
    assert local_data_path("opencompass/afqmc-dev", data) == data / "clue" / "afqmc" / "dev.json"
    assert local_data_path("json", data) is None
    other = build(TaskEntry(name="FewCLUE_ocnli_fc_ppl", engine="opencompass", split="dev"), data)
    assert other.fingerprint != task.fingerprint and other.key == "oc:FewCLUE_ocnli_fc_ppl-dev"
    # CLUE configs hold one dev set under a bare abbr; CMNLIDatasetV2 drops "-" labels, HFDataset not
    gen = build(TaskEntry(name="CLUE_ocnli_gen", engine="opencompass", split="dev"), data)
    ppl = build(TaskEntry(name="CLUE_ocnli_ppl", engine="opencompass", split="dev"), data)
    assert gen.meta["abbrs"] == ppl.meta["abbrs"] == ["ocnli"]
    assert (gen.meta["n"], ppl.meta["n"]) == (2950, 3000)


@pytest.mark.slow
def test_ppl_compat_reproduces_opencompass_at_batch_size_8(ppl_runs, data, tiny_model_dir, tmp_path):
    """The suite setting `ppl_compat: {opencompass_batch_size: 8}` gives, through bench's own
    scorer, the values OpenCompass's own run at its default batch size 8 reports."""
    _, ours, _ = ppl_runs
    suite = tmp_path / "compat.yaml"
    suite.write_text(f"name: compat\nmode: ppl\nsplit: dev\nppl_compat: {{opencompass_batch_size: 8}}\n"
                     f"tasks: [{', '.join(TASKS)}]\n", encoding="utf-8")
    models = _models_file(tmp_path / "models.yaml", tiny_model_dir, ("base",))
    store = Store(tmp_path / "compat.sqlite")
    (run,) = run_suite(suite, models, None, data, None, store)
    signatures = {t["task"]: t["signature"] for t in store.run_tasks(run.run_id)}
    for task, result in zip(TASKS, ours["bs8"], strict=True):
        mine = store.run_records(run.run_id, f"{task}-dev")
        assert [r["id"] for r in result.records] == [r["id"] for r in mine] and len(mine) == 160
        for oc_rec, rec in zip(result.records, mine, strict=True):
            want = [c["ce"] for c in oc_rec["logprobs"]]
            assert [c["ce"] for c in rec["logprobs"]] == pytest.approx(want, abs=1e-4), rec["id"]
            assert oc_rec["score"] == rec["score"], rec["id"]
        acc = next(t for t in run.tasks if t.task == f"{task}-dev").metrics["accuracy"]["value"]
        assert acc == pytest.approx(result.metrics["accuracy"]["value"], abs=1e-4)
        assert signatures[f"{task}-dev"] == "acc|mode:ppl-oc|norm:oc-mean-ce|oc-batch:8"
    assert run_suite(suite, models, None, data, None, store)[0].model_calls == 0
