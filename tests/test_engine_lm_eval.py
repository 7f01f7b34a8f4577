"""lm-evaluation-harness as a bench engine: log-likelihood parity, cache, leaderboard, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from bench.backends.hf import HFBackend  # noqa: E402
from bench.compare.runs import compare  # noqa: E402
from bench.config import ModelSpec, TaskEntry  # noqa: E402
from bench.engines import build_engine_task  # noqa: E402
from bench.errors import BenchError  # noqa: E402
from bench.evaluate.suite import run_suite  # noqa: E402
from bench.report.leaderboard import leaderboard_data  # noqa: E402
from bench.store import Store  # noqa: E402
from bench.tasks import load_task  # noqa: E402
from bench.tasks.loaders import DEMO_DATA_DIR  # noqa: E402
from tests.helpers import ROOT  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "lm_eval_tasks" / "bench_bustm.yaml"
DATA = DEMO_DATA_DIR / "fewclue" / "bustm" / "dev_few_all.json"


def _task_dir(root: Path) -> Path:
    """A copy of the fixture task with its data file as an absolute path."""
    root.mkdir(parents=True, exist_ok=True)
    text = FIXTURE.read_text(encoding="utf-8")
    text = text.replace("bench/tasks/demo_data/fewclue/bustm/dev_few_all.json", str(DATA))
    (root / "bench_bustm.yaml").write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    return _task_dir(tmp_path_factory.mktemp("lm_eval_tasks"))


@pytest.fixture(scope="module")
def base_backend(tiny_model_dir) -> HFBackend:
    return HFBackend(ModelSpec(name="tiny", path=str(tiny_model_dir), device="cpu",
                               dtype="float32", template="base"))


def _entry(name: str, include_path: Path | str | None, **kw) -> TaskEntry:
    return TaskEntry(engine="lm-eval", name=name,
                     include_path=str(include_path) if include_path else None, **kw)


def test_loglikelihood_parity_with_lm_eval(task_dir, base_backend):
    """bench's native log p(choice | context) equals lm-eval's, doc by doc, choice by choice;
    and the lm-eval task feeds the model bench's own bustm ppl prompts."""
    task = build_engine_task(_entry("bench_bustm", task_dir), DEMO_DATA_DIR)
    assert (task.key, task.mode) == ("lm-eval:bench_bustm", "ppl")
    assert task.engine_version == "lm-eval/0.4.13"
    assert task.signature == "acc|engine:lm-eval-0.4.13|task:bench_bustm|fewshot:0"
    lm_task = task.loaded["tasks"]["bench_bustm"]
    docs = list(lm_task.eval_docs)
    native = load_task("bustm", "dev", "ppl", DEMO_DATA_DIR)
    assert len(docs) == len(native.samples) == 12
    pairs = []
    for doc, sample in zip(docs, native.samples, strict=True):
        ctx = lm_task.doc_to_text(doc)
        for choice, prompt in zip(lm_task.doc_to_choice(doc), sample.ppl_prompts, strict=True):
            pairs.append((ctx, "\n" + choice))
            assert ctx + "\n" + choice == base_backend.render(prompt, "ppl")

    result = task.run(base_backend.spec, base_backend)
    theirs = [lp["logprob"] for r in result.records for lp in r["logprobs"]]
    ours = [r["logprob"] for r in base_backend.loglikelihood(pairs)]
    assert len(ours) == len(theirs) == 24
    assert ours == pytest.approx(theirs, abs=1e-4)
    assert [r["id"] for r in result.records] == [f"doc{i}" for i in range(12)]
    assert result.metrics["acc"]["n"] == 12
    assert result.metrics["acc"]["value"] == pytest.approx(
        sum(r["score"] for r in result.records) / 12)
    assert result.timings["forward_calls"] >= 1


def test_suite_stores_caches_and_shows_on_leaderboard(tmp_path, task_dir, tiny_model_dir,
                                                      tiny_model_dir_b):
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n"
        f"  - {{name: tiny-a, path: {tiny_model_dir}, device: cpu, dtype: float32}}\n"
        f"  - {{name: tiny-b, path: {tiny_model_dir_b}, device: cpu, dtype: float32,"
        " template: base}\n",
        encoding="utf-8")
    suite = tmp_path / "lm.yaml"
    suite.write_text(
        "name: lm\nmode: ppl\ntasks:\n  - bustm\n"
        f"  - {{engine: lm-eval, name: bench_bustm, include_path: {task_dir}}}\n", encoding="utf-8")
    store = Store(tmp_path / "results" / "bench.sqlite")
    first = run_suite(suite, models, None, DEMO_DATA_DIR, None, store)
    for run in first:
        engine = {t.task: t for t in run.tasks}["lm-eval:bench_bustm"]
        assert engine.metrics["accuracy"]["n"] == 12
        assert engine.metrics["engine"]["acc"]["n"] == 12
        assert engine.timings["computed"] == 12 and engine.timings["forward_calls"] >= 1
        assert run.model_calls > 0
    second = run_suite(suite, models, None, DEMO_DATA_DIR, None, store)
    for before, after in zip(first, second, strict=True):
        assert after.model_calls == 0
        assert all(t.timings["computed"] == 0 for t in after.tasks)
        assert [t.metrics for t in after.tasks] == [t.metrics for t in before.tasks]

    board = leaderboard_data(store, "lm")
    row = {t["key"]: t for t in board["tasks"]}["lm-eval:bench_bustm"]
    assert (row["name"], row["split"]) == ("bench_bustm", "validation")
    assert (row["mode"], row["n"]) == ("ppl", 12)
    assert row["signature"].startswith("acc|engine:lm-eval-")
    assert {m["name"] for m in board["models"]} == {"tiny-a", "tiny-b"}
    assert all("lm-eval:bench_bustm" in m["scores"] for m in board["models"])
    assert board["examples"]["lm-eval:bench_bustm"]
    assert {t["key"] for t in board["tasks"]} == {"bustm-dev", "lm-eval:bench_bustm"}

    # an engine task compares like a native one: paired on its items, McNemar on its 0/1 scores
    comp = compare(store, "lm", "tiny-a", "tiny-b")
    rows = {(r["task"], r["metric"]): r for r in comp["rows"]}
    engine_row = rows[("lm-eval:bench_bustm", "accuracy")]
    scores = {m["name"]: m["scores"]["lm-eval:bench_bustm"]["value"] for m in board["models"]}
    assert engine_row["n"] == 12 and engine_row["test"] == "McNemar exact"
    assert engine_row["delta"] == pytest.approx(scores["tiny-b"] - scores["tiny-a"])
    assert comp["family_size"] == 2


def test_fingerprint_follows_data_and_settings(tmp_path, task_dir):
    base = build_engine_task(_entry("bench_bustm", task_dir), DEMO_DATA_DIR)
    elsewhere = _task_dir(tmp_path / "elsewhere")
    moved = build_engine_task(_entry("bench_bustm", elsewhere), DEMO_DATA_DIR)
    assert moved.fingerprint == base.fingerprint  # the YAML's location is not its content
    shots = build_engine_task(_entry("bench_bustm", task_dir, num_fewshot=1), DEMO_DATA_DIR)
    limited = build_engine_task(_entry("bench_bustm", task_dir, limit=3), DEMO_DATA_DIR)
    assert len({base.fingerprint, shots.fingerprint, limited.fingerprint}) == 3
    assert shots.signature.endswith("fewshot:1") and limited.meta["n"] == 3


def test_unknown_task_suggests_a_name(task_dir):
    pattern = r"unknown lm-eval task 'bench_bustn'.*did you mean 'bench_bustm'.*local: bench_bustm"
    with pytest.raises(BenchError, match=pattern):
        build_engine_task(_entry("bench_bustn", task_dir), DEMO_DATA_DIR)


def test_missing_include_path(tmp_path):
    with pytest.raises(BenchError, match="include_path .* is not a folder"):
        build_engine_task(_entry("bench_bustm", tmp_path / "nope"), DEMO_DATA_DIR)


def test_unreachable_dataset_says_network_or_local_task(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    (tmp_path / "hub_task.yaml").write_text(
        "task: hub_task\ndataset_path: bench-tests/no-such-dataset\noutput_type: multiple_choice\n"
        "test_split: test\ndoc_to_text: '{{q}}'\ndoc_to_choice: ['a', 'b']\ndoc_to_target: 0\n",
        encoding="utf-8")
    with pytest.raises(BenchError) as err:
        build_engine_task(_entry("hub_task", tmp_path), DEMO_DATA_DIR)
    message = str(err.value)
    assert "lm-eval task 'hub_task'" in message and "bench-tests/no-such-dataset" in message
    assert "network" in message and "include_path" in message


def test_generate_until_task_gives_raw_generations(tmp_path, base_backend):
    (tmp_path / "gen.yaml").write_text(
        f"task: bustm_gen\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    validation: {DATA}\noutput_type: generate_until\nvalidation_split: validation\n"
        "doc_to_text: \"语句一：“{{sentence1}}”\\n语句二：“{{sentence2}}”\\nA. 无关\\nB. 相关\\n答：\"\n"
        "doc_to_target: \"{{['A', 'B'][label | int]}}\"\n"
        "generation_kwargs: {until: ['\\n'], max_gen_toks: 4, do_sample: false}\n"
        "metric_list: [{metric: exact_match, aggregation: mean, higher_is_better: true}]\n",
        encoding="utf-8")
    task = build_engine_task(_entry("bustm_gen", tmp_path, limit=3, num_fewshot=1), DEMO_DATA_DIR)
    assert task.mode == "gen" and task.signature.startswith("exact_match|") and task.meta["n"] == 3
    result = task.run(base_backend.spec, base_backend)
    assert [r["target"] for r in result.records] == ["B", "A", "B"]
    assert all("答：" in r["input"] and r["input"].count("答：") == 2 for r in result.records)
    assert all(r["score"] == float(r["answer"] == r["target"]) for r in result.records)
    assert result.metrics["exact_match"]["n"] == 3 and result.timings["forward_calls"] >= 1
