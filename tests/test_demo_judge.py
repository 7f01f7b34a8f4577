"""The demo judge: tiny-a trained by `bench train` (bench/domain/kids-judge.yaml) on rows that
ask exactly what the judge scorer asks (bench/domain/judge_rows.py), served by `transformers
serve`, grading held-out answers in a suite run: every verdict recorded, parsed or counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.domain import DATA_DIR
from bench.domain.judge_rows import DEMO_JUDGE, judge_scorer, request
from bench.judge.parse import parse_scores
from tests.helpers import ROOT

CONFIG = ROOT / "bench" / "domain" / "kids-judge.yaml"
CHAT = DATA_DIR / "judge_chat_train.jsonl"
N = 8  # held-out questions judged, each answered well (its reference) and poorly
# measured on a 2-CPU machine through transformers serve: parse rate 0.88 over these 16 answers
# (0.90 over 20), mean overall 0.69 for references vs 0.36 for poor answers; another training seed
# parsed 0.83 of 100 held-out answers (judged locally), hence the margin
MIN_PARSE_RATE = 0.6


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---- the training rows ---------------------------------------------------------------------

def test_training_rows_are_the_scorers_request_and_a_verdict_it_parses():
    from bench.domain.compose import verdict
    from bench.tasks.open_ended import read_open
    from bench.train.dataset_info import load_dataset_info, read_source

    rows = _rows(CHAT)
    assert 0 < len(rows) <= 300
    scorer = judge_scorer()
    assert scorer.config.reference is False and scorer.config.rubric.dimensions[0].name == "child_friendly"
    # a held-out question, as the open kind reads it, gets the request the rows were built with
    samples, _ = read_open(DATA_DIR / "heldout_open.jsonl", limit=3)
    for sample in samples:
        asked = scorer.messages(sample, "答案。")
        assert request(sample.messages[-1]["content"], "答案。") == asked
        assert "参考答案" not in asked[1]["content"]  # reference: false
    verdicts = set()
    for row in rows:
        system, user, reply = row["messages"]
        assert system == {"role": "system", "content": scorer.system}
        question, answer = ("\n".join(part.split("\n")[2:-1]) for part in user["content"].split("\n\n"))
        assert [system, user] == request(question, answer)
        parsed = parse_scores(reply["content"], scorer.dimensions, 1, 10)
        assert parsed.status == "ok" and parsed.method == "json", reply
        assert parsed.reasons["overall"].startswith(("合格：", "不合格："))
        verdicts.add(parsed.reasons["overall"].startswith("合格"))
    assert verdicts == {True, False}  # good and poor answers both
    assert list(json.loads(rows[0]["messages"][2]["content"])["scores"]) == scorer.dimensions
    assert set(verdict(("generic",))["scores"]) == set(scorer.dimensions)
    # the dataset_info.json entry reads them as LLaMA-Factory does (OpenAI messages, system kept)
    source = load_dataset_info(DATA_DIR / "dataset_info.json", "kids_judge_chat")
    read, log = read_source(source)
    assert len(read) == len(rows) and not log.bad_rows
    assert [m["role"] for m in read[0].messages] == ["system", "user", "assistant"]


def test_training_rows_share_nothing_with_the_held_out_sets(tmp_path):
    from bench.domain.check import TRAIN_FILES, heldout_leaks, leak_count
    from bench.domain.generate import build
    from bench.train.decontam import heldout_texts, overlaps, read_rows, train_texts

    train = read_rows(CHAT)
    for name in ("heldout_open.jsonl", "heldout_pairs.jsonl"):  # `bench decontam` reports 0
        assert overlaps(train_texts(train), heldout_texts(read_rows(DATA_DIR / name))) == [], name
    for name in TRAIN_FILES:  # the generator's own check, run on this file's text alone
        shutil.copy(CHAT, tmp_path / name)
    assert leak_count(heldout_leaks(build(0).records, tmp_path)) == 0


# ---- trained, served, judging ---------------------------------------------------------------

@pytest.mark.slow
def test_demo_judge_trained_served_and_every_verdict_recorded(tmp_path):
    pytest.importorskip("trl")
    from bench.backends.tiny import build_tiny_model
    from bench.config import ModelSpec
    from bench.demo import CANDIDATES, demo_corpus
    from bench.evaluate.suite import run_suite
    from bench.serve.server import serving
    from bench.store import Store
    from bench.train.registry import resolve
    from bench.train.run import train
    from tests.helpers import write_models
    from tests.openai_server import ScriptedServer

    # tiny-a as `bench demo` builds it, then `bench train bench/domain/kids-judge.yaml`
    base = build_tiny_model(tmp_path / "tiny-a", corpus=demo_corpus(), **CANDIDATES["tiny-a"])
    models, results = write_models(tmp_path / "models.yaml", **{"tiny-a": base}), tmp_path / "results"
    trained = train(CONFIG, models, results)
    assert trained.trained and trained.output == "tiny-a-kids-judge"
    store = Store(results / "bench.sqlite")
    record = store.training(store.trained_models()["tiny-a-kids-judge"]["train_key"])["record"]
    assert record["manifest"]["held_out_overlaps"] == []
    print(f"demo judge trained in {trained.steps} steps, {trained.wall_s:.1f} s")

    # held-out questions (never trained on), each answered by its reference and by a poor answer
    pairs = _rows(DATA_DIR / "heldout_pairs.jsonl")[:N]
    data = tmp_path / "heldout.jsonl"
    data.write_text("".join(json.dumps({"instruction": p["prompt"], "input": "", "reference":
                                        p["chosen"]}, ensure_ascii=False) + "\n" for p in pairs),
                    encoding="utf-8")
    good = {p["prompt"]: p["chosen"] for p in pairs}
    poor = {p["prompt"]: p["rejected"] for p in pairs}
    spec = resolve("tiny-a-kids-judge", models, results / "bench.sqlite")
    assert isinstance(spec, ModelSpec)
    with serving(spec, "transformers", log_dir=tmp_path / "logs", timeout=300) as server, \
            ScriptedServer(answer=lambda q: good[q]) as well, \
            ScriptedServer(answer=lambda q: poor[q]) as badly:
        judge = server.entry
        assert judge["endpoint"] == "chat" and judge["weights_fingerprint"]
        served = tmp_path / "served.yaml"
        served.write_text(json.dumps({"models": [
            {"name": "answers-well", "backend": "openai", "base_url": well.base_url, "model": "scripted"},
            {"name": "answers-poorly", "backend": "openai", "base_url": badly.base_url, "model": "scripted"},
            judge]}, ensure_ascii=False), encoding="utf-8")
        suite = tmp_path / "suite.yaml"
        scorer = {**DEMO_JUDGE, "judges": [judge["name"]], "max_tokens": 128}
        suite.write_text(json.dumps({"name": "demo-judge", "split": "test", "tasks": [{
            "name": "kids", "kind": "open", "data": str(data), "generation": {"max_new_tokens": 512},
            "scorers": [scorer]}]}, ensure_ascii=False), encoding="utf-8")
        runs = run_suite(suite, served, ["answers-well", "answers-poorly"], None, None, store,
                         verbose=False)

    overall, parsed_all, per_answer = {}, [], {}
    for run in runs:
        (task,) = run.tasks
        metrics = task.metrics
        assert metrics["judge_parsed"]["n"] == N  # every answer counted, parsed or not
        items = store.run_items(run.run_id, task.task)
        assert len(items) == N
        for _, item in items:
            verdict = item["scores"]["judge"]
            (asked,) = verdict["judges"]
            assert verdict["parse_status"] == asked["status"] and isinstance(asked["raw"], str)
            assert asked["judge"] == judge["name"]
            parsed_all.append(verdict["values"]["judge_parsed"])
            per_answer.setdefault(item["id"], {})[run.model] = verdict["values"]["judge_overall"]
        overall[run.model] = metrics["judge_overall"]["value"] if metrics.get("judge_overall") else None
        print(run.model, {k: (v["value"], v["n"]) for k, v in metrics.items()})
    rate = sum(parsed_all) / len(parsed_all)
    both = [v for v in per_answer.values() if None not in v.values()]
    wins = sum(v["answers-well"] > v["answers-poorly"] for v in both)
    print(f"demo judge parse rate {rate:.2f} over {len(parsed_all)} answers; overall {overall}; "
          f"reference above the poor answer in {wins} of {len(both)} questions judged both times")
    assert rate >= MIN_PARSE_RATE
    assert overall["answers-well"] > overall["answers-poorly"]
