"""Answer post-processors for gen mode, looked up by the name a task carries in Task.meta.

- `first_capital`: OpenCompass 0.5.4 `first_capital_postprocess`, character for character: the first
  character of the output for which `str.isupper()` is true ("答案是B" → "B", "I think A" → "I",
  full-width "Ｂ" counts too), else "".
- `first_number`: bench's own, for iflytek / csldcp whose 119 / 67 options are numbered 1..N
  (letters run out at Z): the first run of ASCII digits ("答：12. 办公" → "12"), else "".

`decided(name, text)` says whether a partial output's answer can no longer change, for early stop:
a capital letter is final once seen, a number only once a non-digit follows it ("1" may become "12").
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bench.errors import BenchError, suggest

PostProcessor = Callable[[str], str]

_NUMBER = re.compile(r"[0-9]+")


def first_capital(text: str) -> str:
    """OpenCompass `first_capital_postprocess`."""
    for t in text:
        if t.isupper():
            return t
    return ""


def first_number(text: str) -> str:
    """First run of ASCII digits, leading zeros dropped ("007" → "7"); "" when there is none."""
    match = _NUMBER.search(text)
    if not match:
        return ""
    return str(int(match.group()))


POSTPROCESSORS: dict[str, PostProcessor] = {
    "first_capital": first_capital,
    "first_number": first_number,
}


def get(name: str) -> PostProcessor:
    try:
        return POSTPROCESSORS[name]
    except KeyError:
        raise BenchError(f"unknown post-processor '{name}'{suggest(name, POSTPROCESSORS)}") from None


def decided(name: str, text: str) -> bool:
    """True when more generated text cannot change `get(name)(text)`."""
    if name == "first_number":
        match = _NUMBER.search(text)
        return bool(match) and match.end() < len(text)
    return get(name)(text) != ""
