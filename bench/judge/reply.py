"""Shared reading of a judge's reply: clean() and the JSON values found in it, best first.

clean() removes inline <think> blocks only; reasoning that a server returns in a separate field
(`reasoning_content`, `thinking`) is the caller's to drop before parsing.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

WIDE = {0xFF01 + i: 0x21 + i for i in range(94)} | {0x3000: 0x20}  # ！..～ -> !..~, 　 -> space
_TAG = re.compile(r"<(/?)think>", re.I)
_FENCE = re.compile(r"```[A-Za-z]*[ \t]*\n?(.*?)```", re.S)


def as_text(x: Any) -> str:
    """The reply as a string: None -> "", bytes decoded, a dict or list as JSON."""
    if isinstance(x, str) or x is None:
        return x or ""
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    try:
        return json.dumps(x, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(x)


def key(k: Any) -> str:
    """A key compared loosely: half-width, lower case, without spaces, '_' and '-'."""
    return re.sub(r"[\s_\-]+", "", str(k).translate(WIDE)).lower()


def strip_think(text: str) -> str:
    """Drop <think>…</think> blocks, everything before a stray </think> (the opening tag was in the
    prompt) and everything after an unclosed <think>. One linear pass; a <think> inside a block is
    text, as with a lazy regex."""
    kept: list[str] = []
    inside, pos = False, 0
    for m in _TAG.finditer(text):
        if inside and m[1]:
            inside, pos = False, m.end()
        elif not inside and m[1]:
            kept, pos = [], m.end()
        elif not inside:
            kept.append(text[pos:m.start()])
            inside = True
    return "".join(kept) + ("" if inside else text[pos:])


def clean(text: str) -> str:
    """strip_think(), then full-width ASCII forms (８，：｛＂Ａ) and the ideographic space to
    half-width, then strip whitespace. Chinese characters and 。、“” stay as they are; unlike
    NFKC it leaves …, ①, ㎝ alone and keeps every position (one code point for one)."""
    return strip_think(as_text(text)).translate(WIDE).strip()


def loads(s: str) -> Any:
    """json.loads, retried without trailing commas; None when it does not parse."""
    for t in (s, re.sub(r",\s*([}\]])", r"\1", s)):
        try:
            return json.loads(t)
        except (ValueError, RecursionError):
            pass
    return None


def brace_spans(n: str) -> list[tuple[int, int]]:
    """Balanced {…} spans, the last-ending (then outermost) first, from a string-aware scan (braces
    inside JSON strings) and a naive one (a stray quote in prose)."""
    spans: set[tuple[int, int]] = set()
    for aware in (True, False):
        stack: list[int] = []
        in_str = esc = False
        for i, c in enumerate(n):
            if in_str:
                esc, in_str = (False, True) if esc else (c == "\\", c != '"')
            elif c == '"' and aware and stack:
                in_str = True
            elif c == "{":
                stack.append(i)
            elif c == "}" and stack:
                spans.add((stack.pop(), i + 1))
    return sorted(spans, key=lambda s: (-s[1], s[0]))[:200]


def json_candidates(raw: str) -> Iterator[tuple[str, Any]]:
    """(method, value) for each JSON value in the reply, best first: the whole text and ```json
    fences (last first) as "json", then {…} blocks (last first) as "json_block". Each is parsed as
    written, then half-width, so strings keep their Chinese punctuation when they can."""
    s = strip_think(raw).strip()
    n = s.translate(WIDE)
    spans = [(0, len(s))] + [m.span(1) for m in reversed(list(_FENCE.finditer(n)))]
    found = [("json", a, b) for a, b in spans] + [("json_block", a, b) for a, b in brace_spans(n)]
    for method, a, b in found:
        obj = loads(s[a:b])
        obj = loads(n[a:b]) if obj is None and n[a:b] != s[a:b] else obj
        if obj is not None:
            yield method, obj
