"""Read a pairwise winner (A / B / tie) and a good/bad verdict from a judge's messy reply.

Pure and never raising, like parse_scores: every result has a status, the problems seen and the
raw text. Inline <think> blocks are dropped first (see bench.judge.reply.clean).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bench.judge.reply import as_text, clean, json_candidates, key

_SIDES = ("", "answer", "response", "assistant", "model", "output", "回答", "答案", "模型", "助手")
_WINNERS = ({f"{p}a": "A" for p in _SIDES} | {f"{p}b": "B" for p in _SIDES} | {"1": "A", "2": "B"}
            | dict.fromkeys(("tie", "c", "equal", "draw", "both", "same", "平局", "平手", "相同", "一样",
                             "相当", "两者相当", "不相上下", "equallygood"), "tie"))
_WINNER_KEYS = {"winner", "better", "verdict", "result", "choice", "preferred", "preference",
                "betteranswer", "answer", "选择", "胜者", "获胜者", "更好", "更好的回答", "结论", "结果"}
_TIE = r"(?:平局|平手|(?i:(?:a\s+)?tie\b|equal(?:ly good)?\b))"
_LABELS = re.compile(  # "Winner: A", "胜者：B", "更好的是A", "The better answer is B", "结论：平局"
    r"(?:(?i:winner|better\s+(?:answer|response|one)|final\s+verdict|verdict)|胜者|获胜者|获胜方|赢家"
    r"|更好的(?:回答|答案)?|更优的(?:回答|答案)?|结论|最终结果)(?>\s*(?:(?i:is)|是|为)?\s*[:=]?\s*"
    rf"(?:(?i:answer|response|assistant)\s*|回答|答案)?)(?:([AB])(?![A-Za-z类级])|{_TIE})")
_COMPARE = re.compile(  # "A更好", "回答B更优", "A is better", "I prefer B", "两者相当"
    r"(?<![A-Za-z])(?:(?i:answer|response|assistant)\s*|回答|答案)?([AB])\s*(?:更好|更优|更佳|胜出|获胜"
    r"|较好|略好|好一些|更胜一筹|(?i:is\s+(?:better|superior|preferred)|wins))"
    r"|(?i:prefer)\s+(?i:answer\s+|response\s+)?([AB])(?![A-Za-z])"
    r"|(?:平局|平手|不相上下|两者相当|难分高下|(?i:it'?s a tie|it is a tie|equally good))")
_BRACKETS = re.compile(r"\[\[\s*(A|B|C|(?i:tie)|平局)\s*\]\]")
_GOOD_KEYS = {"isgood", "good", "是否合格", "合格", "pass", "passed"}
_YES = {"true", "yes", "y", "1", "是", "对", "合格", "好", "good", "pass"}
_NO = {"false", "no", "n", "0", "否", "不", "不合格", "不好", "bad", "fail"}


@dataclass
class PairParsed:
    """A pairwise verdict; status: ok | ambiguous (both sides claimed) | no_verdict | empty |
    error."""
    status: str
    winner: str | None = None  # "A" | "B" | "tie"
    method: str = ""  # json | json_block | brackets | plain | pattern
    raw: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class VerdictParsed:
    """{"is_good", "reason", "improved_answer"}; status: ok | partial (not good and no improved
    answer) | bad_value (is_good missing or not yes/no) | no_json | empty | error."""
    status: str
    is_good: bool | None = None
    reason: str = ""
    improved_answer: str | None = None
    raw: str = ""
    problems: list[str] = field(default_factory=list)
    method: str = ""  # json | json_block


def _pick(obj: dict, names: set[str]) -> Any:
    return next((v for k, v in obj.items() if key(k) in names), None)


def _winner(v: Any) -> str | None:
    if isinstance(v, bool) or v is None or isinstance(v, (dict, list)):
        return None
    return _WINNERS.get(key(v).strip(".。!！"))


def _decide(found: list[str], method: str, raw: str) -> PairParsed | None:
    sides = sorted(set(found))
    if len(sides) > 1:
        return PairParsed("ambiguous", None, method, raw, [f"{method}: both {' and '.join(sides)}"])
    return PairParsed("ok", sides[0], method, raw) if sides else None


def _hits(pattern: re.Pattern[str], t: str) -> list[str]:
    return [next((g for g in m.groups() if g), "tie") for m in pattern.finditer(t)]


def parse_pairwise(text: str) -> PairParsed:
    """The winner from {"winner": "A"|"B"|"tie"} (also "Answer A", "2", "平局"), [[A]] / [[B]] /
    [[C]] (C = tie, MT-Bench), a bare "A", or phrases: `Winner: A`, `胜者：B`, `更好的是A`, then
    comparisons (`A更好`, `B is better`). Both sides claimed at one level -> "ambiguous"."""
    raw = as_text(text)
    try:
        t, problems = clean(raw), []
        if not t:
            return PairParsed("empty", raw=raw)
        for method, obj in json_candidates(raw):
            value = _pick(obj, _WINNER_KEYS) if isinstance(obj, dict) else obj
            if _winner(value):
                return PairParsed("ok", _winner(value), method, raw)
            problems = problems or [f"{method}: no winner in {as_text(obj)[:80]!r}"]
        brackets = [{"A": "A", "B": "B"}.get(b, "tie") for b in _BRACKETS.findall(t)]
        got = _decide(brackets, "brackets", raw)
        got = got or (PairParsed("ok", _winner(t), "plain", raw) if _winner(t) else None)
        for pattern in (_LABELS, _COMPARE):  # "Winner: A" outranks "A is better"
            got = got or _decide(_hits(pattern, t), "pattern", raw)
        if got:
            return got
        return PairParsed("no_verdict", raw=raw, problems=problems + ["no winner found"])
    except Exception as e:  # a parser bug must not stop a run; the status records it
        return PairParsed("error", raw=raw, problems=[f"parser error: {e!r}"])


def _bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    k = key(v).strip(".。!！") if isinstance(v, str) else None
    return True if k in _YES else False if k in _NO else None


def parse_verdict(text: str) -> VerdictParsed:
    """{"is_good": bool, "reason": str, "improved_answer": str} from the last JSON value with an
    is_good key; "true"/"false"/"是"/"否" accepted. Not good without an improved answer -> partial."""
    raw = as_text(text)
    try:
        if not clean(raw):
            return VerdictParsed("empty", raw=raw)
        found = ((m, o) for m, o in json_candidates(raw)
                 if isinstance(o, dict) and _pick(o, _GOOD_KEYS) is not None)
        method, obj = next(found, ("", None))
        if obj is None:
            return VerdictParsed("no_json", raw=raw, problems=["no JSON object with is_good"])
        value = _pick(obj, _GOOD_KEYS)
        improved = as_text(_pick(obj, {"improvedanswer", "improved", "改进回答", "betteranswer"}))
        reason = as_text(_pick(obj, {"reason", "理由", "explanation", "原因"}))
        got = VerdictParsed("ok", _bool(value), reason, improved if improved.strip() else None, raw,
                            [], method)
        if got.is_good is None:
            got.status, got.problems = "bad_value", [f"is_good is not yes/no: {value!r}"]
        elif not got.is_good and not got.improved_answer:
            got.status, got.problems = "partial", ["missing: improved_answer (is_good is false)"]
        return got
    except Exception as e:  # a parser bug must not stop a run; the status records it
        return VerdictParsed("error", raw=raw, problems=[f"parser error: {e!r}"])
