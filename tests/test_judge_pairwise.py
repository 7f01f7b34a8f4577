"""`bench judge --pairwise`: two models' stored answers judged in both orders by a scripted judge;
flips count as ties, unparsable items are excluded and counted, verdicts are cached, and human
labels give Cohen's κ."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.helpers import ROOT
from tests.openai_server import ScriptedServer

HELDOUT = ROOT / "bench" / "domain" / "data" / "heldout_open.jsonl"
QUESTIONS = [json.loads(line)["instruction"] for line in
             HELDOUT.read_text(encoding="utf-8").splitlines()[:8]]
CAND = {q: f"CAND{i}：建议选110码，理由是孩子长得快，面料符合GB 31701-2015 B类。" for i, q in enumerate(QUESTIONS)}
BASE = {q: f"BASE{i}：买大一码。" for i, q in enumerate(QUESTIONS)}


def judge_reply(key: str) -> str:
    if key.startswith("你的回答无法解析"):
        return "嗯……"  # the repair does not help item 7
    if "CAND" not in key or "BASE" not in key:  # the suite's rubric scorer, during bench run
        return json.dumps({"scores": {d: 7 for d in ("child_friendly", "safety", "accuracy",
                                                     "service", "compliance")}})
    item = int(re.search(r"(?:CAND|BASE)(\d)", key)[1])
    cand_first = key.index("CAND") < key.index("BASE")
    if item < 4:  # prefers the candidate, wherever it is
        return json.dumps({"winner": "A" if cand_first else "B", "reason": "更具体"})
    if item < 6:  # always the first answer: flips with the order
        return "综合来看，[[A]]"
    if item == 6:
        return '{"winner": "tie", "reason": "差不多"}'
    return "两个都还行吧" if cand_first else '{"winner": "A"}'  # unparsable in one order


def cli(*args, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1",
                                                       "PYTHONPATH": str(ROOT), **(env or {})})


def test_pairwise_both_orders_flips_exclusions_cache_and_kappa(tmp_path):
    results, labels = tmp_path / "results", tmp_path / "labels.jsonl"
    labels.write_text("\n".join(json.dumps({"task": "answers-test", "sample_id": f"L{i + 1}",
                                            "preferred": "candidate" if i < 4 else "tie"})
                                for i in range(7)) + "\n", encoding="utf-8")
    with ScriptedServer(answer=lambda k: CAND[k]) as cand, \
            ScriptedServer(answer=lambda k: BASE[k]) as base, \
            ScriptedServer(answer=judge_reply) as judge:
        models = tmp_path / "models.yaml"
        models.write_text(json.dumps({"models": [
            {"name": n, "backend": "openai", "base_url": s.base_url, "model": "scripted"}
            for n, s in (("cand", cand), ("base", base), ("judge", judge))]}))
        suite = tmp_path / "suite.yaml"
        suite.write_text(json.dumps({"name": "judged", "split": "test", "tasks": [{
            "name": "answers", "kind": "open", "data": str(HELDOUT), "limit": 8,
            "scorers": [{"name": "rouge"}, {"name": "judge", "judges": ["judge"],
                                            "rubric": "kids-service", "repair": False}]}]},
            ensure_ascii=False))
        common = ["--suite", str(suite), "--models", str(models), "--results", str(results)]
        no_answers = cli("judge", "--pairwise", "--baseline", "base", "--candidate", "cand", *common)
        assert no_answers.returncode == 2 and "no stored answer" in no_answers.stderr
        ran = cli("run", *common, "--model", "base", "--model", "cand")
        assert ran.returncode == 0, ran.stderr
        before = sum(judge.requests.values())
        first = cli("judge", "--pairwise", "--baseline", "base", "--candidate", "cand",
                    "--human", str(labels), *common)
        assert first.returncode == 0, first.stderr
        asked = sum(judge.requests.values()) - before
        second = cli("judge", "--pairwise", "--baseline", "base", "--candidate", "cand", *common)
        assert second.returncode == 0, second.stderr
        assert sum(judge.requests.values()) - before == asked  # verdicts came from the store
    # 16 verdicts; the item-7 order that does not parse gets one repair request
    assert asked == 16 + 1
    row = next(line for line in first.stdout.splitlines() if line.startswith("│ answers-test"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[2:5] == ["7", "1", "4/3/0"]  # judged, excluded, W/T/L
    assert cells[5].startswith("78.6")  # (4 + 3/2) / 7
    assert cells[7].startswith("28.6")  # 2 of 7 flipped
    assert cells[9].startswith("1.00")  # κ: the labels agree on every judged item
    assert "│ 0 " in next(line for line in second.stdout.splitlines() if line.startswith("│ answers-test"))
    board = cli("leaderboard", "--suite", str(suite), "--results", str(results),
                "--out", str(tmp_path / "board.html"))
    assert board.returncode == 0, board.stderr
    html = (tmp_path / "board.html").read_text(encoding="utf-8")
    assert "Pairwise comparisons" in html and "cand vs base" in html
    assert "4/3/0" in html and "78.6 [" in html and "28.6 [" in html  # W/T/L, win and flip rates
    assert "judge_parsed" in html  # the rubric judge's parse rate beside its dimensions
