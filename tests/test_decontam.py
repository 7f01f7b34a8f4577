"""Held-out contamination: copies are found with their span, whatever their punctuation and width;
paraphrases and unrelated texts are not; n is respected."""

from __future__ import annotations

import pytest

from bench.errors import BenchError
from bench.train import decontam
from bench.train.data import PreferenceRow, SFTRow
from bench.train.decontam import heldout_texts, normalise, overlaps, train_texts

QUESTION = "中华人民共和国的首都是哪一座城市？请简要说明理由。"
PARAPHRASE = "我国的首都位于哪个城市，能否简单地解释一下原因？"
UNRELATED = "小明有三个苹果，他又买了五个，现在一共有几个苹果？"


def msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def test_a_copied_question_is_found_with_its_span():
    train = [("t1", "今天天气很好，我们去公园散步吧。"),
             ("t2", f"下面是一道地理题。{QUESTION}答：北京。"),
             ("t3", "一段完全无关的训练文本，讲的是做饭。")]
    found = overlaps(train, [("h1", QUESTION), ("h2", PARAPHRASE), ("h3", UNRELATED)])
    assert found == [decontam.Overlap("h1", ("t2",), 1, "中华人民共和国的首都是哪一座城市？请简要说明理由",
                                      1.0)]


def test_punctuation_width_and_case_do_not_hide_an_overlap():
    held = "ＧＰＴ－４在２０２３年发布，它的上下文长度是多少？"
    train = [("t", "问：gpt 4 在 2023 年发布, 它的上下文长度是多少?")]
    assert normalise(held) == normalise(train[0][1])[1:] == "gpt4在2023年发布它的上下文长度是多少"
    [hit] = overlaps(train, [("h", held)])
    assert (hit.id, hit.share) == ("h", 1.0)
    assert hit.span == held[:-1]  # as the held-out item writes it, up to its last letter


def test_n_is_respected_and_short_items_are_never_reported():
    shared = "一二三四五六七八九十甲乙"  # 12 characters
    train = [("t", f"前文{shared}后文")]
    held = [("h", f"开头{shared}结尾")]
    assert overlaps(train, held) == []  # default n = 13
    [hit] = overlaps(train, held, n=12)
    assert hit.span == shared and hit.share == pytest.approx(1 / 5)  # 1 of its 5 12-grams
    assert overlaps([("t", shared)], [("h", shared)]) == []  # shorter than n: nothing to compare
    with pytest.raises(BenchError, match="at least 1"):
        overlaps(train, held, n=0)


def test_partial_copies_several_training_texts_and_the_longest_span():
    first = QUESTION[:14]
    train = [(f"t{i}", f"无关内容{first}") for i in range(7)] + [("long", f"又一段{QUESTION}")]
    [hit] = overlaps(iter(train), [("h", QUESTION + UNRELATED)], n=8)
    assert hit.train_ids == ("t0", "t1", "t2", "t3", "t4") and hit.n_train == 8
    assert hit.span == QUESTION.rstrip("。")  # from 'long', not the 14 characters of the others
    assert 0 < hit.share < 1


def test_n_grams_do_not_cross_training_texts_or_chunks(monkeypatch):
    monkeypatch.setattr(decontam, "_CHUNK", 8)  # a chunk every text or two
    train = [("a", "一二三四五六"), ("b", "七八九十"), ("c", "零一二三四五六七八九十")]
    assert overlaps(train[:2], [("h", "五六七八")], n=4) == []  # only across the a|b boundary
    [hit] = overlaps(train, [("h", "五六七八")], n=4)
    assert hit.train_ids == ("c",)


def test_row_helpers_take_questions_from_held_out_and_all_text_from_training():
    sft = SFTRow("L1", (msg("system", "你是助手"), msg("user", "问题一"), msg("assistant", "答案一"),
                        msg("user", "问题二"), msg("assistant", "答案二")))
    pair = PreferenceRow("L2", (msg("user", "问题三"),), "好的回答", "差的回答")
    assert list(heldout_texts([sft, pair])) == [("L1", "问题一\n问题二"), ("L2", "问题三")]
    assert list(train_texts([sft, pair])) == [
        ("L1", "你是助手\n问题一\n答案一\n问题二\n答案二"), ("L2", "问题三\n好的回答\n差的回答")]
    [hit] = overlaps(train_texts([pair]), [("h", "好的回答")], n=4)
    assert hit.train_ids == ("L2",)


def test_cli_reports_copied_held_out_questions_and_exits_1(tmp_path):
    import json

    from tests.helpers import bench_cli

    question = "我家宝宝两岁半，身高九十三厘米，冬天穿羽绒服应该选哪个尺码比较合适呢？"
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"instruction": question, "input": "", "output": "建议选100码。"},
                                ensure_ascii=False) + "\n", encoding="utf-8")
    held = tmp_path / "held.jsonl"
    rows = [{"instruction": question.replace("？", "?"), "input": "", "reference": "选100码。"},
            {"instruction": "这件外套可以机洗吗？水温多少度合适，会不会缩水变形？", "input": "",
             "reference": "可以。"}]
    held.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    found = bench_cli("decontam", "--train", str(train), "--held-out", str(held))
    assert found.returncode == 1, found.stderr
    assert "held.jsonl:L1" in found.stdout and "train.jsonl:L1" in found.stdout
    assert "held.jsonl:L2" not in found.stdout
    assert "1 of 2 held-out items share a 13-character span" in found.stdout
    clean = bench_cli("decontam", "--train", str(train), "--held-out", str(held), "--n", "40")
    assert clean.returncode == 0 and "0 of 2 held-out items" in clean.stdout
