"""The open kind: questions answered freely, generations in the output layer, ROUGE/BLEU/rules as
score layers over them, the task's generation settings in the cache key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.evaluate.suite import run_suite
from bench.report.leaderboard import leaderboard_data
from bench.report.render import render_leaderboard
from bench.store import Store
from bench.tasks.open_ended import read_open
from tests.helpers import ROOT, write_models
from tests.openai_server import ScriptedServer

HELDOUT = ROOT / "bench" / "domain" / "data" / "heldout_open.jsonl"


def suite(path: Path, task: dict, **top) -> Path:
    path.write_text(json.dumps({"name": "open", "split": "test", "tasks": [task], **top},
                               ensure_ascii=False), encoding="utf-8")
    return path


def open_task(data: Path, **extra) -> dict:
    return {"name": "answers", "kind": "open", "data": str(data), **extra}


def test_reads_both_row_shapes_and_counts_bad_rows(tmp_path):
    data = tmp_path / "q.jsonl"
    rows = [
        {"instruction": "宝宝两岁穿多大？", "input": "身高88厘米", "reference": "建议90码。"},
        {"messages": [{"role": "system", "content": "你是客服。"},
                      {"role": "user", "content": "纯棉的吗？"}], "reference": "是纯棉的。"},
        {"instruction": "没有参考答案"},
        {"messages": [{"role": "user", "content": "问"}, {"role": "assistant", "content": "答"}],
         "reference": "参考"},
    ]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    samples, log = read_open(data)
    assert [s.id for s in samples] == ["L1", "L2"]
    assert samples[0].messages == ({"role": "user", "content": "宝宝两岁穿多大？\n身高88厘米"},)
    assert samples[1].messages[0] == {"role": "system", "content": "你是客服。"}
    assert samples[1].reference == "是纯棉的。"
    assert [w for w, _ in log.bad_rows] == [f"{data}:3", f"{data}:4"]
    assert "'reference' is missing" in log.bad_rows[0][1]
    assert "last must be a user" in log.bad_rows[1][1] or "user" in log.bad_rows[1][1]


def _records(store: Store, run) -> list[dict]:
    return sorted(store.run_records(run.run_id, "answers-test"), key=lambda r: r["id"])


def test_generation_settings_bound_answers_and_are_in_the_key(tmp_path, tiny_model_dir):
    models = write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)
    store = Store(tmp_path / "b.sqlite")
    short = suite(tmp_path / "s.yaml", open_task(HELDOUT, limit=4, generation={"max_new_tokens": 6}))
    first = run_suite(short, models, None, None, None, store)[0]
    # the 4 questions decode as one batch: one forward pass per new token at most
    assert 0 < first.model_calls <= 6
    longer = suite(tmp_path / "s.yaml", open_task(HELDOUT, limit=4, generation={"max_new_tokens": 12}))
    second = run_suite(longer, models, None, None, None, store)[0]
    assert second.tasks[0].timings["computed"] == 4  # another max_new_tokens: another answer
    assert 0 < second.model_calls <= 12
    assert sum(len(r["prediction"]) for r in _records(store, first)) < \
        sum(len(r["prediction"]) for r in _records(store, second))
    again = run_suite(longer, models, None, None, None, store)[0]
    assert again.model_calls == 0


def test_stop_strings_end_the_answer_and_are_recorded(tmp_path):
    text = "建议选90码。因为孩子长得快。还有别的问题吗？"
    with ScriptedServer(answer=lambda key: text) as server:
        models = tmp_path / "m.yaml"
        models.write_text(json.dumps({"models": [{"name": "api", "backend": "openai",
                                                  "base_url": server.base_url, "model": "scripted"}]}))
        store = Store(tmp_path / "b.sqlite")
        run = run_suite(suite(tmp_path / "s.yaml", open_task(
            HELDOUT, limit=3, generation={"max_new_tokens": 64, "stop": ["。因为"]})),
            models, None, None, None, store)[0]
        plain = run_suite(suite(tmp_path / "s.yaml", open_task(HELDOUT, limit=3, generation={
            "max_new_tokens": 64})), models, None, None, None, store)[0]
    cut = _records(store, run)
    assert all(r["prediction"] == "建议选90码" and "。因为" in r["prediction_cut"] for r in cut)
    assert plain.tasks[0].timings["computed"] == 3  # the stop list is part of the key
    assert all(r["prediction"] == text for r in _records(store, plain))


RULES = {"name": "rules", "checks": [
    {"type": "forbidden", "label": "exaggeration", "phrases": ["百分之百", "闭眼入"]},
    {"type": "required", "label": "safety standard", "phrases": ["GB 31701"]},
    {"type": "length", "min_chars": 10, "max_chars": 400},
]}


def test_adding_a_scorer_asks_the_model_nothing(tmp_path, tiny_model_dir):
    models = write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)
    store = Store(tmp_path / "b.sqlite")
    gen = {"max_new_tokens": 8}
    first = run_suite(suite(tmp_path / "s.yaml", open_task(HELDOUT, limit=5, generation=gen)),
                      models, None, None, None, store)[0]
    assert first.model_calls > 0 and first.scorer_calls == 5
    more = suite(tmp_path / "s.yaml", open_task(HELDOUT, limit=5, generation=gen, scorers=[
        {"name": "rouge"}, {"name": "bleu"}, RULES]))
    second = run_suite(more, models, None, None, None, store)[0]
    assert second.model_calls == 0
    assert second.scorer_calls == 10  # bleu and rules; rouge's scores were stored
    metrics = second.tasks[0].metrics
    assert set(metrics) >= {"rouge-l", "rouge-1", "rouge-2", "bleu", "rules_pass", "rules_score"}
    assert metrics["rouge-l"] == first.tasks[0].metrics["rouge-l"]
    passed = metrics["rules_pass"]  # a pass rate with its bootstrap CI over the 5 answers
    assert passed["n"] == 5 and passed["ci_low"] <= passed["value"] <= passed["ci_high"]
    stored = store.run_records(second.run_id, "answers-test")
    hits = [r["scores"]["rules"] for r in stored]
    assert [h["values"]["rules_pass"] for h in hits] == [float(h["passed"]) for h in hits]
    assert sum(h["passed"] for h in hits) / 5 == passed["value"]
    assert all(len(h["hits"]) == 3 for h in hits)  # each check's outcome, per answer


def test_references_themselves_pass_the_demo_rules_and_score_full_rouge(tmp_path):
    """Answering with the reference: ROUGE 1.0 and every demo rule passed (the rules are sane)."""
    import yaml

    demo = yaml.safe_load((ROOT / "suites" / "kids-heldout.yaml").read_text(encoding="utf-8"))
    entry = next(t for t in demo["tasks"] if t.get("kind") == "open")
    rows = [json.loads(line) for line in HELDOUT.read_text(encoding="utf-8").splitlines()]
    refs = {r["instruction"] + (f"\n{r['input']}" if r["input"] else ""): r["reference"] for r in rows}
    with ScriptedServer(answer=lambda key: refs[key]) as server:
        models = tmp_path / "m.yaml"
        models.write_text(json.dumps({"models": [{"name": "oracle", "backend": "openai",
                                                  "base_url": server.base_url, "model": "scripted",
                                                  "concurrency": 8}]}))
        store = Store(tmp_path / "b.sqlite")
        task = {**entry, "data": str(HELDOUT), "generation": {"max_new_tokens": 10_000}}
        run = run_suite(suite(tmp_path / "s.yaml", task), models, None, None, None, store)[0]
    metrics = run.tasks[0].metrics
    assert metrics["rouge-l"]["value"] == pytest.approx(1.0)
    assert metrics["rules_pass"]["value"] == 1.0 and metrics["rules_pass"]["n"] == 150


def test_leaderboard_shows_open_task_columns_and_examples(tmp_path, tiny_model_dir):
    models = write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)
    store = Store(tmp_path / "b.sqlite")
    task = open_task(HELDOUT, limit=4, generation={"max_new_tokens": 8},
                     scorers=[{"name": "rouge"}, RULES])
    run_suite(suite(tmp_path / "s.yaml", task), models, None, None, None, store)
    html = render_leaderboard(leaderboard_data(store, "open"))
    assert "rouge-l|tok:jieba|f1|avg:macro" in html
    for column in ("rules_pass", "answer_chars", "<th>reference</th>", "<th>answer</th>"):
        assert column in html
    assert "GB 31701" in html  # a reference, shown beside the answer


def test_an_open_task_needs_data_and_greedy_locally(tmp_path, tiny_model_dir):
    models = write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)
    with pytest.raises(BenchError, match="needs `data:`"):
        run_suite(suite(tmp_path / "s.yaml", {"name": "answers", "kind": "open"}), models, None,
                  None, None, Store(tmp_path / "b.sqlite"))
    hot = suite(tmp_path / "s.yaml", open_task(HELDOUT, generation={"temperature": 0.7}))
    with pytest.raises(BenchError, match="decodes greedily"):
        run_suite(hot, models, None, None, None, Store(tmp_path / "b.sqlite"))
