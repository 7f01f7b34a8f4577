"""Open-ended answer scorers (bench/scorers): ROUGE and BLEU on Chinese pairs, rule checks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import TypeAdapter, ValidationError

from bench.scorers import (SCORER_CONFIGS, BleuConfig, BleuScorer, RougeConfig, RougeScorer,
                           RulesConfig, RulesScorer, build)

REFERENCE, ANSWER = "订单明天发货", "您的订单明天就会发货"


def score(scorer, pairs: list[tuple[str, str]]) -> list[dict]:
    """(prediction, reference) pairs through scorer.score."""
    samples = [SimpleNamespace(reference=r) for _, r in pairs]
    return scorer.score(samples, [{"prediction": p} for p, _ in pairs])


def values(scorer, prediction: str, reference: str) -> dict:
    return score(scorer, [(prediction, reference)])[0]["values"]


# --- ROUGE -------------------------------------------------------------------------------------

def test_rouge_char_tokens_match_hand_worked_f1():
    # ref  订 单 明 天 发 货          (6 chars)
    # pred 您 的 订 单 明 天 就 会 发 货 (10 chars)
    # rouge-1: 6 shared -> P 6/10, R 6/6 -> F1 2*.6*1/1.6 = 0.75
    # rouge-2: ref 订单 单明 明天 天发 发货 (5), pred 您的 的订 订单 单明 明天 天就 就会 会发 发货 (9);
    #          shared 订单 单明 明天 发货 = 4 -> P 4/9, R 4/5 -> F1 (32/45)/(56/45) = 4/7
    # rouge-l: LCS 订单明天发货 = 6 -> as rouge-1, 0.75
    got = values(RougeScorer("char"), ANSWER, REFERENCE)
    assert got == pytest.approx({"rouge-l": 0.75, "rouge-1": 0.75, "rouge-2": 4 / 7})
    # order matters only to L and 2: 发货明天 vs 明天发货: unigrams 4/4 -> 1.0; LCS 2 of 4 -> 0.5;
    # bigrams 发货 货明 明天 vs 明天 天发 发货: 2 of 3 each -> 2/3
    got = values(RougeScorer("char"), "发货明天", "明天发货")
    assert got == pytest.approx({"rouge-l": 0.5, "rouge-1": 1.0, "rouge-2": 2 / 3})


def test_rouge_jieba_words_match_hand_worked_f1():
    from bench.scorers.rouge import Tokenizer

    tok = Tokenizer("jieba")
    assert tok.tokenize(REFERENCE) == ["订单", "明天", "发货"]
    assert tok.tokenize(ANSWER) == ["您", "的", "订单", "明天", "就", "会", "发货"]
    assert tok.tokenize(" 订单  明天 ") == ["订单", "明天"]  # whitespace tokens dropped
    # rouge-1: 3 shared -> P 3/7, R 3/3 -> F1 (6/7)/(10/7) = 0.6; rouge-l: LCS 订单 明天 发货 = 3 -> 0.6
    # rouge-2: ref (订单 明天)(明天 发货), pred 6 bigrams; shared (订单 明天) -> P 1/6, R 1/2 -> F1 0.25
    got = values(RougeScorer("jieba"), ANSWER, REFERENCE)
    assert got == pytest.approx({"rouge-l": 0.6, "rouge-1": 0.6, "rouge-2": 0.25})


def test_rouge_default_tokenizer_would_score_chinese_zero():
    from rouge_score import rouge_scorer

    default = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"]).score(REFERENCE, ANSWER)
    assert all(s.fmeasure == 0.0 for s in default.values())  # it deletes CJK characters
    assert values(RougeScorer(), ANSWER, REFERENCE)["rouge-l"] > 0.0


def test_rouge_empty_sides_score_zero_and_identity_one():
    scorer = RougeScorer()
    got = score(scorer, [("", REFERENCE), ("  ", REFERENCE), (ANSWER, ""), (REFERENCE, REFERENCE)])
    assert [g["values"] for g in got[:3]] == [dict.fromkeys(scorer.metrics, 0.0)] * 3
    assert got[3]["values"] == dict.fromkeys(scorer.metrics, 1.0)
    assert score(scorer, [(None, REFERENCE)])[0]["values"]["rouge-l"] == 0.0


def test_rouge_signature_and_fingerprint_follow_the_tokenizer():
    jieba, char = RougeScorer("jieba"), RougeScorer("char")
    assert jieba.metrics[0] == "rouge-l" and jieba.name == "rouge"
    assert jieba.signature == "rouge-l|tok:jieba|f1|avg:macro|cap:10000"
    assert char.signature == "rouge-l|tok:char|f1|avg:macro|cap:10000"
    assert RougeScorer("char", max_tokens=500).fingerprint != char.fingerprint
    assert jieba.fingerprint != char.fingerprint
    assert jieba.fingerprint == RougeScorer("jieba").fingerprint


def test_jieba_is_quiet(capfd):
    import logging

    import jieba

    jieba.setLogLevel(logging.DEBUG)  # jieba's default: says "Building prefix dict ..." on stderr
    jieba.dt.initialized = False  # and it says it when it (re)loads its dictionary
    values(RougeScorer("jieba"), ANSWER, REFERENCE)
    assert capfd.readouterr().err == ""


# --- BLEU --------------------------------------------------------------------------------------

def test_bleu_identical_unrelated_and_equal_to_sacrebleu():
    import sacrebleu

    scorer = BleuScorer()
    assert values(scorer, ANSWER, ANSWER) == {"bleu": 1.0}
    assert values(scorer, "请重启路由器试试", "退款已经处理") == {"bleu": pytest.approx(0.0, abs=0.05)}
    own = sacrebleu.sentence_bleu(ANSWER, [REFERENCE], tokenize="zh").score / 100
    assert values(scorer, ANSWER, REFERENCE)["bleu"] == pytest.approx(own)
    assert 0.0 < own < 1.0
    assert values(scorer, "", REFERENCE) == {"bleu": 0.0}
    assert scorer.signature == "bleu|tok:zh|sentence|avg:macro" and scorer.metrics == ("bleu",)
    assert scorer.fingerprint == BleuScorer().fingerprint != RougeScorer().fingerprint


# --- rules -------------------------------------------------------------------------------------

def rules(*checks: dict, threshold: float | None = None) -> RulesScorer:
    return RulesScorer(RulesConfig(name="rules", checks=list(checks), threshold=threshold))


def hit(scorer: RulesScorer, answer: str, i: int = 0) -> dict:
    return scorer.assess(answer)["hits"][i]


def test_forbidden_phrases():
    scorer = rules({"type": "forbidden", "phrases": ["绝对", "百分之百"]})
    assert hit(scorer, "这款产品绝对安全，百分之百有效") == {
        "check": "forbidden: 绝对, 百分之百", "passed": False, "score": 0.0, "found": ["绝对", "百分之百"]}
    assert hit(scorer, "这款产品通过了安全检测") == {
        "check": "forbidden: 绝对, 百分之百", "passed": True, "score": 1.0, "found": []}


def test_required_share_and_min_share():
    check = {"type": "required", "phrases": ["您好", "订单号", "感谢"]}
    answer = "您好，请提供订单号"
    strict, lenient = rules(check), rules({**check, "min_share": 0.6, "label": "礼貌"})
    assert hit(strict, answer) == {"check": "required: 您好, 订单号, 感谢", "passed": False,
                                   "score": pytest.approx(2 / 3), "found": ["您好", "订单号"]}
    assert hit(lenient, answer)["passed"] and hit(lenient, answer)["check"] == "礼貌"
    assert not hit(lenient, "请提供订单号")["passed"]  # 1/3 < 0.6


def test_regex_must_match_and_must_not():
    phone = rules({"type": "regex", "pattern": r"400-\d{3}-\d{4}"})
    assert hit(phone, "请拨打400-820-8820咨询") == {
        "check": r"regex: 400-\d{3}-\d{4}", "passed": True, "score": 1.0, "found": ["400-820-8820"]}
    assert not hit(phone, "请联系客服")["passed"]
    no_url = rules({"type": "regex", "pattern": r"https?://\S+", "must_match": False})
    assert hit(no_url, "详见 http://x.cn 页面") == {
        "check": r"regex absent: https?://\S+", "passed": False, "score": 0.0, "found": ["http://x.cn"]}
    assert hit(no_url, "详见帮助页面")["passed"]


def test_length_bounds_count_stripped_characters():
    scorer = rules({"type": "length", "min_chars": 4, "max_chars": 6})
    assert hit(scorer, "  您好，在的  ") == {
        "check": "length: 4..6 chars", "passed": True, "score": 1.0, "found": ["5 chars"]}
    assert not hit(scorer, "好的")["passed"] and not hit(scorer, "您好，请稍等片刻")["passed"]
    assert hit(rules({"type": "length", "max_chars": 2}), "好的")["check"] == "length: ..2 chars"
    assert hit(rules({"type": "length", "min_chars": 1}), "")["passed"] is False


def test_json_with_and_without_fence():
    scorer = rules({"type": "json"})
    for answer in ['{"intent": "退款"}', '```json\n{"intent": "退款"}\n```', '```\n[1, 2]\n```',
                   ' ```JSON\n{"a": 1}```\n']:
        assert hit(scorer, answer) == {"check": "json", "passed": True, "score": 1.0, "found": []}, answer
    bad = hit(scorer, '好的 {"intent": "退款"}')
    assert not bad["passed"] and bad["found"][0].startswith("not JSON")
    assert not hit(scorer, "```json\n{intent: 退款}\n```")["passed"]


CHECKS = ({"type": "required", "phrases": ["您好"], "weight": 3},
          {"type": "forbidden", "phrases": ["绝对"]})


def test_all_must_pass_without_threshold():
    scorer = rules(*CHECKS)
    got = scorer.assess("您好，绝对没问题")
    assert got["values"] == {"rules_pass": 0.0, "rules_score": 0.75}  # (3*1 + 1*0) / 4
    assert got["passed"] is False and [h["passed"] for h in got["hits"]] == [True, False]
    assert scorer.assess("您好，没问题")["values"] == {"rules_pass": 1.0, "rules_score": 1.0}


def test_threshold_passes_on_the_weighted_mean():
    scorer = rules(*CHECKS, threshold=0.7)
    assert scorer.assess("您好，绝对没问题")["values"] == {"rules_pass": 1.0, "rules_score": 0.75}
    assert scorer.assess("绝对没问题")["values"] == {"rules_pass": 0.0, "rules_score": 0.0}
    assert scorer.assess("没问题")["values"] == {"rules_pass": 0.0, "rules_score": 0.25}
    got = score(scorer, [("您好，绝对没问题", "ref"), ("", "ref")])
    assert [g["passed"] for g in got] == [True, False] and len(got[0]["hits"]) == 2


def test_rules_fingerprint_and_signature_follow_the_config():
    base = rules(*CHECKS)
    assert base.signature.startswith("rules|n:2|") and base.signature.endswith("|pass:all")
    assert rules(*CHECKS, threshold=0.7).signature.endswith("|pass:mean>=0.7")
    assert base.fingerprint == rules(*CHECKS).fingerprint and base.signature == rules(*CHECKS).signature
    changed = rules(CHECKS[0], {**CHECKS[1], "phrases": ["绝对", "保证"]})
    assert changed.fingerprint != base.fingerprint and changed.signature != base.signature
    assert rules(CHECKS[0], {**CHECKS[1], "weight": 2}).fingerprint != base.fingerprint


@pytest.mark.parametrize("check, field", [
    ({"type": "contains", "phrases": ["x"]}, "type"),
    ({"type": "regex", "pattern": "[unclosed"}, "pattern"),
    ({"type": "length"}, "min_chars or max_chars"),
    ({"type": "length", "min_chars": 5, "max_chars": 2}, "min_chars 5 > max_chars 2"),
    ({"type": "forbidden", "phrases": ["x"], "weight": 0}, "weight"),
    ({"type": "forbidden", "phrases": ["x"], "weight": -1}, "weight"),
    ({"type": "forbidden", "phrases": []}, "phrases"),
    ({"type": "required", "phrases": ["x"], "min_share": 1.5}, "min_share"),
    ({"type": "json", "phrases": ["x"]}, "phrases"),
])
def test_bad_checks_name_the_field(check, field):
    with pytest.raises(ValidationError) as err:
        RulesConfig(name="rules", checks=[check])
    assert field in str(err.value)
    if field == "pattern":
        assert "[unclosed" in str(err.value)


def test_configs_and_build():
    with pytest.raises(ValidationError, match="checks"):
        RulesConfig(name="rules", checks=[])
    with pytest.raises(ValidationError, match="threshold"):
        RulesConfig(name="rules", checks=[CHECKS[0]], threshold=2)
    adapter = TypeAdapter(SCORER_CONFIGS[0] | SCORER_CONFIGS[1] | SCORER_CONFIGS[2])
    assert build(adapter.validate_python({"name": "rouge", "tokenizer": "char"})) == RougeScorer("char")
    assert build(BleuConfig(name="bleu")) == BleuScorer()
    assert build(RougeConfig(name="rouge")).tokenizer == "jieba"
    config = RulesConfig(name="rules", checks=list(CHECKS))
    assert build(config) == RulesScorer(config)
    with pytest.raises(ValidationError, match="tokenizer"):
        RougeConfig(name="rouge", tokenizer="bpe")
    with pytest.raises(ValidationError, match="extra"):
        BleuConfig(name="bleu", tokenize="13a")


def test_missing_package_names_the_extra():
    from bench.errors import BenchError
    from bench.scorers._deps import require, version

    with pytest.raises(BenchError, match=r"scorer 'rouge' needs the package 'nope'.*bench\[judge\]"):
        require("nope_not_installed", "nope", "rouge")
    with pytest.raises(BenchError, match=r"bench\[judge\]"):
        version("nope-not-installed", "bleu")


def test_lcs_length_equals_the_dynamic_programme():
    import random

    from bench.scorers.rouge import lcs_length

    def table(a, b):
        prev = [0] * (len(b) + 1)
        for x in a:
            cur = [0]
            for j, y in enumerate(b):
                cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
            prev = cur
        return prev[-1]

    rng = random.Random(7)
    for _ in range(500):
        a = [rng.choice("订单明天发货") for _ in range(rng.randint(0, 30))]
        b = [rng.choice("订单明天发货") for _ in range(rng.randint(0, 30))]
        assert lcs_length(a, b) == table(a, b), (a, b)


@pytest.mark.parametrize("kind", ["char", "jieba"])
def test_rouge_equals_rouge_score_below_the_cap_and_on_the_cut_tokens_above_it(kind):
    """Values are rouge-score's own (its ROUGE-L table is not built); past max_tokens a side is
    cut to its first tokens, and the sample says how many it had."""
    import random

    from rouge_score import rouge_scorer

    from bench.scorers.rouge import Tokenizer

    rng = random.Random(3)
    words = ["宝宝", "两岁", "穿", "多大", "码", "订单", "明天", "发货", "面料", "纯棉", "，", "。"]
    texts = ["".join(rng.choice(words) for _ in range(rng.randint(1, 120))) for _ in range(40)]
    pairs = list(zip(texts[::2], texts[1::2]))
    ours = RougeScorer(kind)
    reference = rouge_scorer.RougeScorer(["rougeL", "rouge1", "rouge2"], tokenizer=Tokenizer(kind))
    for prediction, ref in pairs:
        want = reference.score(ref, prediction)
        got = values(ours, prediction, ref)
        assert got == pytest.approx({"rouge-l": want["rougeL"].fmeasure,
                                     "rouge-1": want["rouge1"].fmeasure,
                                     "rouge-2": want["rouge2"].fmeasure}, abs=1e-12)
    capped = RougeScorer(kind, max_tokens=50)
    long_pred, long_ref = "".join(texts[:10]), "".join(texts[10:20])
    [result] = score(capped, [(long_pred, long_ref)])
    tok = Tokenizer(kind)
    cut = {"prediction": len(tok.tokenize(long_pred)), "reference": len(tok.tokenize(long_ref))}
    assert result["cut"] == cut and min(cut.values()) > 50
    want = rouge_scorer.RougeScorer(["rougeL", "rouge1", "rouge2"],
                                    tokenizer=Tokenizer(kind, 50)).score(long_ref, long_pred)
    assert result["values"]["rouge-l"] == pytest.approx(want["rougeL"].fmeasure, abs=1e-12)
    assert result["values"]["rouge-2"] == pytest.approx(want["rouge2"].fmeasure, abs=1e-12)


def test_two_long_texts_score_in_bounded_memory():
    """200 KB against 200 KB with the character tokenizer: rouge-score's table grew past 13 GB
    and was killed; capped and bit-parallel it stays small (the cut recorded)."""
    import tracemalloc

    text = ("宝宝两岁穿多大码？订单明天发货，面料是纯棉的。" * 9000)[:200_000]
    tracemalloc.start()
    [result] = score(RougeScorer("char"), [(text, text[::-1])])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result["cut"] == {"prediction": 200_000, "reference": 200_000}
    assert peak < 200 * 2**20, f"{peak / 2**20:.0f} MiB"
