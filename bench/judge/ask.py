"""One judge request: ask, parse, and once more if the reply does not parse (the repair
request carries the judge's own reply and what was wrong with it)."""

from __future__ import annotations

from collections.abc import Callable


def ask_parsed(backend, messages: list[dict], max_tokens: int, parse: Callable, repair: str | None):
    """(parsed reply, whether a repair was asked, the first raw reply, the request's usage).
    `repair` is a template with `{problems}`; None asks once only."""
    with backend.meter() as meter:
        first = backend.chat(messages, max_tokens)
        parsed, repaired = parse(first), False
        if parsed.status != "ok" and repair is not None:
            problems = "; ".join(parsed.problems) or parsed.status
            again = [*messages, {"role": "assistant", "content": first},
                     {"role": "user", "content": repair.format(problems=problems)}]
            parsed, repaired = parse(backend.chat(again, max_tokens)), True
    return parsed, repaired, first, meter.summary()
