"""Read rubric scores from an LLM judge's messy reply (parse_scores); pairwise and good/bad
verdicts live in bench.judge.verdict and are re-exported here.

Every parser is pure and never raises: it returns a status, what it found, the problems it saw and
the raw text. clean() removes inline <think> blocks only; reasoning that a server returns in a
separate field (`reasoning_content`, `thinking`) is the caller's to drop before parsing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.judge.reply import WIDE, as_text, clean, json_candidates, key
from bench.judge.verdict import PairParsed, VerdictParsed, parse_pairwise, parse_verdict

__all__ = ["Parsed", "PairParsed", "VerdictParsed", "ScoreStatus", "clean", "parse_scores",
           "parse_pairwise", "parse_verdict", "OVERALL_KEYS", "EXTRA_KEYS"]

_NUM = r"(-?\d+(?:\.\d+)?)(?:\s*/\s*(\d+(?:\.\d+)?))?"
_NUMBER = re.compile(rf"\s*{_NUM}\s*(?:分|points?|pts?)?\s*", re.I)
_BRACKETS = re.compile(rf"\[\[\s*{_NUM}\s*\]\]")
_Q = "\\s\"'“”‘’「」『』*|"  # quotes, markdown and table bars around a name or a number
_GAP = (rf"(?![A-Za-z0-9])(?>[{_Q}]*(?:\([^()\n]{{0,40}}\))?[{_Q}]*"  # atomic: no backtracking
        r"(?:[\s_-]*(?:得分|评分|分数|打分|(?i:score|rating)))?[\s*]*(?:[:=]|[-–—](?=\s)|为|是)?"
        rf"[{_Q}]*)")
_LINE_START_SCORE = r"|(?m:^)[ \t*#>-]*(?:(?i:score|rating)|评分|得分|分数|打分)"  # "Score: 8/10"
OVERALL_KEYS = ("overall", "total", "综合得分", "总分", "综合评分", "总评分", "最终得分", "总体评分",
                "score", "overall_score", "total_score")
EXTRA_KEYS = ("reason", "reasons", "reasoning", "explanation", "comment", "comments", "analysis",
              "feedback", "summary", "confidence", "is_good", "improved_answer", "理由", "原因", "评语",
              "说明", "分析", "置信度")
ScoreStatus = Literal["ok", "partial", "bad_range", "unknown_dimension", "no_json", "empty",
                      "error"]


_OVERALL, _EXTRA = {key(k) for k in OVERALL_KEYS}, {key(k) for k in EXTRA_KEYS}
_SCORE_FIELDS = {"score", "分数", "得分", "评分", "value", "rating"}
_REASON_FIELDS = {"reason", "理由", "explanation", "comment", "原因", "说明"}
_NAME_FIELDS = {"name", "dimension", "key", "criterion", "维度", "名称"}
_BOXES = {"scores", "score", "dimensions", "评分", "分数", "维度", "items"}


@dataclass
class Parsed:
    """Rubric scores read from a reply; status 'ok' only when every dimension is present and in
    range. Out-of-range scores are kept as given (never clamped); reasons['overall'] is a general
    reason. status: ok | partial | bad_range | unknown_dimension | no_json | empty | error."""
    status: ScoreStatus
    scores: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    overall: float | None = None
    method: str = ""  # json | json_block | brackets | key_pattern
    problems: list[str] = field(default_factory=list)
    raw: str = ""


def _number(v: Any) -> tuple[float, str | None] | None:
    """(value, denominator) from 8, 8.5, "8", "8/10", "８分", {"score": 8}; None if not a number."""
    if isinstance(v, dict):
        v = next((x for k, x in v.items() if key(k) in _SCORE_FIELDS), None)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v), None
    m = _NUMBER.fullmatch(v.translate(WIDE)) if isinstance(v, str) else None
    return (float(m[1]), m[2]) if m else None


def _field(d: dict, names: set[str]) -> Any:
    return next((v for k, v in d.items() if key(k) in names), None)


class _Rubric:
    """Dimension names and aliases, matched case- and width-insensitively."""

    def __init__(self, dimensions: list[str], aliases: dict[str, list[str]], low: float,
                 high: float):
        self.dims, self.low, self.high = dimensions, low, high
        self.names = [(n, d) for d in dimensions for n in [d, *(aliases.get(d) or [])]]
        self.table = {key(n): d for n, d in reversed(self.names)}

    def dim(self, name: Any) -> str | None:
        k = str(name).translate(WIDE)  # "安全合规性（safety）", "safety_score" also match
        for c in (k, re.sub(r"\(.*?\)", "", k), *re.findall(r"\((.*?)\)", k)):
            for c2 in (c, re.sub(r"(?i)[\s_-]*(score|得分|评分|分数)$", "", c)):
                if key(c2) in self.table:
                    return self.table[key(c2)]
        return None

    def put(self, p: Parsed, name: str, v: Any) -> None:
        got = _number(v)
        if got is None:
            return p.problems.append(f"not_a_number: {name}={v!r}")
        value, denominator = got
        if name in p.scores or (name == "overall" and p.overall is not None):
            return p.problems.append(f"duplicate: {name}={v!r} ignored")
        if name == "overall":
            p.overall = value
        else:
            p.scores[name] = value
        if not self.low <= value <= self.high or (denominator and float(denominator) != self.high):
            p.problems.append(f"bad_range: {name}={v!r} outside [{self.low:g}, {self.high:g}]")

    def read_json(self, obj: Any, p: Parsed) -> None:
        if isinstance(obj, (int, float, str)) and not isinstance(obj, bool):
            return self.put(p, "overall", obj)  # a bare score
        obj = {"dimensions": obj} if isinstance(obj, list) else obj
        if not isinstance(obj, dict):
            return
        boxes = (v for k, v in obj.items() if key(k) in _BOXES and isinstance(v, (dict, list)))
        box = next(boxes, obj)
        if isinstance(box, list):  # [{"name": "safety", "score": 8, "reason": "…"}, …]
            items = [i for i in box if isinstance(i, dict)]
            box = {}
            for i in items:
                name = _field(i, _NAME_FIELDS)
                box.update({as_text(name): i} if name is not None else i)
        for k, v in box.items():
            dim, numeric = self.dim(k), _number(v) is not None
            if dim:
                self.put(p, dim, v)
                reason = _field(v, _REASON_FIELDS) if isinstance(v, dict) else None
                if reason:
                    p.reasons[dim] = as_text(reason)
            elif key(k) in _OVERALL and not isinstance(v, (dict, list)):
                self.put(p, "overall", v)
            elif numeric and key(k) not in _EXTRA:
                p.problems.append(f"unknown_dimension: {k!r}")
        for k, v in obj.items() if box is not obj else ():
            if key(k) in _OVERALL and not isinstance(v, (dict, list)):
                self.put(p, "overall", v)
        reasons = _field(obj, {"reasons", "理由"})
        for k, v in reasons.items() if isinstance(reasons, dict) else ():
            p.reasons.setdefault(self.dim(k) or str(k), as_text(v))
        general = reasons if isinstance(reasons, str) else _field(obj, _REASON_FIELDS)
        if general:
            p.reasons["overall"] = as_text(general)

    def read_patterns(self, t: str, p: Parsed) -> None:
        overall = [(n, "overall") for n in OVERALL_KEYS if n != "score"]
        for dim in dict.fromkeys(d for _, d in self.names + overall):
            names = sorted((n for n, d in self.names + overall if d == dim), key=len, reverse=True)
            alts = "|".join(r"[\s_-]?".join(map(re.escape, re.split(r"[\s_-]+", n))) for n in names)
            alts += _LINE_START_SCORE if dim == "overall" else ""
            hits = list(re.finditer(rf"(?<![A-Za-z0-9_])(?:(?i:{alts})){_GAP}{_NUM}", t))
            if hits and (dim != "overall" or p.overall is None):
                self.put(p, dim, "/".join(x for x in hits[-1].groups() if x))

    def finish(self, p: Parsed) -> Parsed:
        missing = [d for d in self.dims if d not in p.scores]
        if missing:
            p.problems.append("missing: " + ", ".join(missing))
        kinds = {q.split(":")[0] for q in p.problems}
        p.status = next((k for k in ("bad_range", "unknown_dimension") if k in kinds),
                        "partial" if missing else "ok")
        return p


def parse_scores(text: str, dimensions: list[str], low: int = 1, high: int = 10,
                 aliases: dict[str, list[str]] | None = None) -> Parsed:
    """Scores per dimension: whole-text or ```json → the last {…} block that parses → [[8]]
    (overall) → key patterns such as `安全合规性: 7/10`, `"safety": 7`."""
    raw = as_text(text)
    try:
        rubric, t = _Rubric(list(dimensions or []), dict(aliases or {}), low, high), clean(raw)
        if not t:
            return Parsed("empty", raw=raw)
        first = None
        for method, obj in json_candidates(raw):
            p = Parsed("", method=method, raw=raw)
            rubric.read_json(obj, p)
            if p.scores or p.overall is not None:
                return rubric.finish(p)
            first = first or p
        p = Parsed("", method="key_pattern", raw=raw)
        brackets = _BRACKETS.findall(t)
        if brackets:
            p.method = "brackets"
            rubric.put(p, "overall", "/".join(x for x in brackets[-1] if x))
        rubric.read_patterns(t, p)
        if p.scores or p.overall is not None:
            return rubric.finish(p)
        p = rubric.finish(first) if first else Parsed("")  # JSON without a score: its unknown keys
        if p.status != "unknown_dimension":
            p = Parsed("no_json", raw=raw, problems=["no score found: no JSON, [[n]] or `name: n`"])
        return p
    except Exception as e:  # a parser bug must not stop a run; the status records it
        return Parsed("error", raw=raw, problems=[f"parser error: {e!r}"])
