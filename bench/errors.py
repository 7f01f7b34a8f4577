"""User-facing errors. The CLI prints them as one message and exits 2 (a failed server: 1);
anything else exits 1."""

from __future__ import annotations

import difflib


class BenchError(Exception):
    """A mistake in the user's input (file, key, name, sample): say where and what to do.
    Subclasses for failures that are not the input's fault exit 1 instead of 2."""

    exit_code = 2


class ServerFailed(BenchError):
    """A server failed (a request after its retries, or the process bench started): not the
    input's fault."""

    exit_code = 1


def suggest(name: str, available) -> str:
    """' (did you mean 'x'?) available: a, b, c' for an unknown name."""
    available = sorted(available)
    close = difflib.get_close_matches(name, available, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; available: {', '.join(available) or '(none)'}"


class Interrupted(BaseException):
    """SIGINT or SIGTERM: the CLI says what was kept and exits 128 + the signal number."""

    def __init__(self, signum: int, detail: str = ""):
        super().__init__(signum, detail)
        self.signum, self.detail = signum, detail
