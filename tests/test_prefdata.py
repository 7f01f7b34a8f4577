"""`bench prefdata` against a scripted judge: every messy reply a real judge gives, a verdict that
stays malformed (counted and listed, never dropped), a 429, the store as the resume point, both
output formats read back by bench, and the base model's own answer as the poor one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from bench.backends import get_backend
from bench.config import APIModelSpec
from bench.errors import BenchError, ServerFailed
from bench.judge.fence import fence_markers
from bench.judge.prefdata import (
    PoorModel,
    PoorStyle,
    build_pairs,
    domain_poor,
    prefdata_command,
    read_poor_file,
)
from bench.judge.scorer import REPAIR
from bench.store import Store
from bench.train.data import read_preference
from bench.train.dataset_info import load_dataset_info, read_source
from tests.helpers import ROOT
from tests.openai_server import ScriptedServer

SFT = ROOT / "bench" / "domain" / "data" / "sft_train.jsonl"
ROWS = [json.loads(line) for line in SFT.read_text(encoding="utf-8").splitlines()[:8]]
QUESTIONS = [r["instruction"] for r in ROWS]
ANSWERS = [r["output"] for r in ROWS]
IMPROVED = {i: f"改进后的回答{i}：建议选具体尺码，并说明理由。" for i in (1, 2, 3, 6)}
POOR = ("买大一码就行。", "请联系客服。")


def verdict(good: bool, i: int | None = None) -> str:
    return json.dumps({"is_good": good, "reason": "理由",
                       "improved_answer": "" if good else IMPROVED[i]}, ensure_ascii=False)


REPLIES = {
    0: verdict(True),
    1: verdict(False, 1),
    2: "好的，我的评审如下：\n" + verdict(False, 2) + "\n以上。",  # JSON in prose
    3: "<think>" + verdict(True) + " 先这么判？</think>\n" + verdict(False, 3),  # a decoy
    4: "这个回答还行吧，我觉得可以。",  # malformed, and again after the repair
    5: verdict(True),  # after a 429
    6: json.dumps({"is_good": False, "reason": "缺少下一步"}, ensure_ascii=False),  # partial
    7: "```json\n" + verdict(True) + "\n```",
}


def index_of(key: str) -> int:
    return next(i for i, q in enumerate(QUESTIONS) if q in key)


def judge_reply(key: str) -> str:
    if key.startswith(REPAIR[:8]):  # the repair request names the problem
        return verdict(False, 6) if "improved_answer" in key else "还是说不清楚。"
    return REPLIES[index_of(key)]


def judge_script(key, attempt: int) -> str:
    return "429" if QUESTIONS[5] in key and attempt == 0 else "ok"


def spec(server: ScriptedServer, name: str = "judge") -> APIModelSpec:
    return APIModelSpec(name=name, backend="openai", base_url=server.base_url, model="scripted",
                        concurrency=4, max_retries=3)


@pytest.fixture
def judge():
    with ScriptedServer(script=judge_script, answer=judge_reply) as server:
        yield server


def build(judge_server, tmp: Path, **kw):
    store = Store(tmp / "results" / "bench.sqlite")
    try:
        kw = {"poor": PoorStyle(POOR), "limit": 8, **kw}
        return build_pairs(SFT, spec(judge_server), store, tmp / "out", **kw)
    finally:
        store.close()


def sent(server: ScriptedServer) -> int:
    return sum(server.requests.values())


def test_pairs_counts_rejects_and_resume(judge, tmp_path):
    result = build(judge, tmp_path)
    assert (result.rows_read, result.bad_rows, result.judged_now, result.from_store) == \
        (8, 0, 8, 0)
    assert dict(result.counts) == {"good": 3, "improved": 4, "malformed": 1}
    assert result.pairs == 7
    assert result.usage["requests"] == 10 and result.usage["retries"] == 1  # 2 repairs, one 429

    pairs, log = read_preference(result.out)
    assert log.kept == 7 and not log.bad_rows
    by_question = {p.prompt[-1]["content"]: p for p in pairs}
    assert QUESTIONS[4] not in by_question  # malformed: not a pair
    for i in (0, 5, 7):  # good: the answer against a poor one
        p = by_question[QUESTIONS[i]]
        assert p.chosen == ANSWERS[i] and p.rejected in POOR
    for i in (1, 2, 3, 6):  # not good: the judge's improved answer against the answer
        p = by_question[QUESTIONS[i]]
        assert p.chosen == IMPROVED[i] and p.rejected == ANSWERS[i]
    assert by_question[QUESTIONS[0]].prompt[0] == {"role": "system", "content": ROWS[0]["system"]}

    rejects = [json.loads(line) for line in result.rejects.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["status"]) for r in rejects] == [("L5", "no_json")]
    assert rejects[0]["raw"] == "还是说不清楚。" and rejects[0]["raw_first"] == REPLIES[4]

    source = load_dataset_info(result.dataset_info, "prefdata")
    assert source.kind == "preference" and source.path == result.out
    assert [p.chosen for p in read_source(source)[0]] == [p.chosen for p in pairs]
    assert all(p.prompt[0]["role"] == "system" for p in read_source(source)[0])

    text = "\n".join(result.lines())
    assert "malformed 1" in text and "pairs written 7" in text

    # a rerun asks the judge nothing and writes the same bytes
    before, first = sent(judge), result.out.read_bytes()
    again = build(judge, tmp_path)
    assert sent(judge) == before
    assert (again.judged_now, again.from_store, again.usage.get("requests", 0)) == (0, 8, 0)
    assert again.out.read_bytes() == first and dict(again.counts) == dict(result.counts)


def test_the_answer_is_fenced_in_the_request(judge, tmp_path):
    build(judge, tmp_path, limit=2)
    body = next(b for b in judge.bodies if ANSWERS[0] in b["messages"][-1]["content"])
    assert body["temperature"] == 0
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    assert "is_good" in system and "<<<DATA-…" in system
    begin, end = fence_markers(ANSWERS[0], "DATA")
    assert f"{begin}\n{ANSWERS[0]}\n{end}" in user
    qb, qe = fence_markers(QUESTIONS[0], "DATA")
    assert f"{qb}\n{QUESTIONS[0]}\n{qe}" in user


def test_trl_format_and_dataset_info_merge(judge, tmp_path):
    info = tmp_path / "out" / "dataset_info.json"
    info.parent.mkdir(parents=True)
    info.write_text(json.dumps({"other": {"file_name": "x.jsonl"}}), encoding="utf-8")
    lf = build(judge, tmp_path, name="kids")
    assert set(json.loads(info.read_text(encoding="utf-8"))) == {"other", "kids"}
    assert load_dataset_info(info, "kids").path == lf.out

    trl = build(judge, tmp_path, fmt="trl", name="kids_trl")
    assert trl.dataset_info is None and trl.judged_now == 0  # same verdicts, from the store
    row = json.loads(trl.out.read_text(encoding="utf-8").splitlines()[0])
    assert row["prompt"][0]["role"] == "system" and row["chosen"][0]["role"] == "assistant"
    pairs, _ = read_preference(trl.out)
    assert [(p.chosen, p.rejected) for p in pairs] == \
        [(p.chosen, p.rejected) for p in read_preference(lf.out)[0]]


def test_poor_model_answers_good_rows_once(judge, tmp_path):
    with ScriptedServer(answer=lambda key: "随便买个大码。") as base:
        poor = PoorModel(get_backend(spec(base, "base")))
        result = build(judge, tmp_path, poor=poor)
        assert result.poor_now == 3 and sent(base) == 3  # only the good rows
        pairs, _ = read_preference(result.out)
        good = [p for p in pairs if p.rejected == "随便买个大码。"]
        assert sorted(p.prompt[-1]["content"] for p in good) == \
            sorted(QUESTIONS[i] for i in (0, 5, 7))
        asked = [b["messages"] for b in base.bodies]
        assert all(m[-1]["role"] == "user" and m[0]["role"] == "system" for m in asked)
        again = build(judge, tmp_path, poor=poor)
        assert again.poor_now == 0 and sent(base) == 3


def test_command_resolves_judge_and_poor_file(judge, tmp_path):
    models = tmp_path / "models.yaml"
    models.write_text(json.dumps({"models": [
        {"name": "judge", "backend": "openai", "base_url": judge.base_url, "model": "scripted"},
        {"name": "local", "path": str(tmp_path / "nowhere")}]}), encoding="utf-8")
    poor = tmp_path / "poor.jsonl"
    poor.write_text('"买大一码就行。"\n"请联系客服。"\n', encoding="utf-8")
    assert read_poor_file(poor) == list(POOR)
    out = Console(record=True, width=200)
    args = dict(data=SFT, models_path=models, results_dir=tmp_path / "results",
                out_dir=tmp_path / "out", poor_model=None, poor_file=poor, fmt="lf",
                name="prefdata", limit=8, console=out, out=out)
    with pytest.raises(BenchError, match="backend: openai"):
        prefdata_command(judge_name="local", **args)
    with pytest.raises(BenchError, match="did you mean 'judge'"):
        prefdata_command(judge_name="judgee", **args)
    pairs = Path(__file__).parents[1] / "bench" / "domain" / "data" / "pref_train.jsonl"
    with pytest.raises(BenchError) as err:  # one refusal, not one per row
        prefdata_command(judge_name="judge", **(args | {"data": pairs}))
    assert str(err.value) == (f"{pairs}: holds preference pairs (chosen/rejected); bench prefdata "
                              "makes pairs from SFT rows (a question and its answer): give an SFT file")
    assert not (tmp_path / "results").exists()  # nothing touched before the input is checked
    prefdata_command(judge_name="judge", **args)
    assert "pairs written 7" in out.export_text()
    assert domain_poor() and all("{" not in t for t in domain_poor())
    bad = tmp_path / "bad.json"
    bad.write_text('["ok", 3]', encoding="utf-8")
    with pytest.raises(BenchError, match="item 2"):
        read_poor_file(bad)


def test_multi_turn_history_bad_rows_and_duplicates(tmp_path):
    """Earlier turns become LLaMA-Factory's `history`; a bad row is counted, not judged; two
    identical rows share one request."""
    turns = [{"role": "user", "content": "孩子三岁，想买外套。"},
             {"role": "assistant", "content": "请问身高多少？"},
             {"role": "user", "content": "身高98厘米。"}, {"role": "assistant", "content": "买大码。"}]
    lines = [json.dumps({"messages": turns}, ensure_ascii=False), "{not json"]
    lines += [json.dumps({"messages": [{"role": "user", "content": r["instruction"]},
                                       {"role": "assistant", "content": r["output"]}]},
                         ensure_ascii=False) for r in [*ROWS, *ROWS, *ROWS[:4]]]  # 20 rows, 8 distinct
    data = tmp_path / "sft.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def reply(key: str) -> str:
        if "买大码。" in key:
            assert "身高98厘米" in key and "请问身高多少" in key  # the earlier turns, fenced
            return json.dumps({"is_good": False, "reason": "太短",
                               "improved_answer": "建议选100码。"}, ensure_ascii=False)
        return verdict(True)

    with ScriptedServer(answer=reply) as server:
        store = Store(tmp_path / "bench.sqlite")
        result = build_pairs(data, spec(server), store, tmp_path / "out", poor=PoorStyle(POOR))
        store.close()
        assert sent(server) == 9  # 1 multi-turn + 8 distinct single-turn rows
    assert (result.rows_read, result.bad_rows, result.pairs) == (22, 1, 21)
    first = json.loads(result.out.read_text(encoding="utf-8").splitlines()[0])
    assert first == {"instruction": "身高98厘米。", "input": "", "chosen": "建议选100码。",
                     "rejected": "买大码。", "history": [["孩子三岁，想买外套。", "请问身高多少？"]]}
    columns = json.loads(result.dataset_info.read_text(encoding="utf-8"))["prefdata"]["columns"]
    assert columns["history"] == "history" and "system" not in columns
    pairs, _ = read_source(load_dataset_info(result.dataset_info, "prefdata"))
    assert [m["content"] for m in pairs[0].prompt] == [m["content"] for m in turns[:3]]


def test_a_failed_server_keeps_what_was_judged(tmp_path):
    """A row whose request fails for good stops the run with exit 1 (ServerFailed) and says what
    was kept; the same call then asks only for what is missing."""
    def script(key, attempt: int) -> str:
        return "500" if QUESTIONS[2] in key and attempt == 0 else "ok"

    with ScriptedServer(script=script, answer=judge_reply) as server:
        failing = spec(server).model_copy(update={"max_retries": 0})
        store = Store(tmp_path / "bench.sqlite")
        with pytest.raises(ServerFailed, match="rerun the same command to resume"):
            build_pairs(SFT, failing, store, tmp_path / "out", poor=PoorStyle(POOR), limit=8)
        assert not (tmp_path / "out" / "prefdata.jsonl").exists()
        result = build_pairs(SFT, failing, store, tmp_path / "out", poor=PoorStyle(POOR), limit=8)
        store.close()
        assert result.from_store >= 1 and result.pairs == 7
        asked = {q: sum(n for k, n in server.requests.items() if q in k) for q in QUESTIONS}
        assert asked[QUESTIONS[2]] == 2 and all(asked[q] == 1 for q in QUESTIONS if q != QUESTIONS[2])


def test_cost_when_the_judge_has_prices(judge, tmp_path):
    from bench.config import Prices

    if "prices" not in APIModelSpec.model_fields:
        pytest.skip("models.yaml has no `prices` yet")
    priced = spec(judge).model_copy(update={"prices": Prices(input_per_mtok=1e6,
                                                             output_per_mtok=0)})
    store = Store(tmp_path / "bench.sqlite")
    result = build_pairs(SFT, priced, store, tmp_path / "out", poor=PoorStyle(POOR), limit=2)
    store.close()
    assert result.usage["cost"] == result.usage["prompt_tokens"] == 20  # 2 requests x 10 tokens
    assert "cost 20.0000 USD" in "\n".join(result.lines())


def test_poor_model_local_backend(judge, tmp_path, tiny_model_dir):
    """A local (hf) base model answers the good rows in one batched call, kept in the store."""
    from bench.config import ModelSpec

    local = get_backend(ModelSpec(name="tiny", path=str(tiny_model_dir), dtype="float32",
                                  device="cpu"))
    result = build(judge, tmp_path, poor=PoorModel(local, max_new_tokens=8), limit=3)
    assert result.poor_now == 1 and result.counts["good"] == 1
    again = build(judge, tmp_path, poor=PoorModel(local, max_new_tokens=8), limit=3)
    assert again.poor_now == 0
    assert again.out.read_bytes() == result.out.read_bytes()


def test_bench_prefdata_command_line(judge, tmp_path):
    import os
    import subprocess
    import sys

    models = tmp_path / "models.yaml"
    models.write_text(json.dumps({"models": [{"name": "judge", "backend": "openai",
                                              "base_url": judge.base_url, "model": "scripted"}]}))
    out = tmp_path / "pairs"
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "prefdata", str(SFT), "--judge", "judge", "--out",
         str(out), "--models", str(models), "--limit", "3", "--results", str(tmp_path / "results")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert len((out / "prefdata.jsonl").read_text(encoding="utf-8").splitlines()) == 3
    assert "prefdata" in json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
