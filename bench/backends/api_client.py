"""Requests to an OpenAI-compatible server through the `openai` client, with its own retries off:
bench retries (and counts) them here. Transient failures -- 429 (its Retry-After honoured), 5xx,
timeouts, dropped connections, a 200 whose body is not JSON or has no choices -- are retried with
exponential backoff and full jitter; anything else fails at once with what the server said.
`errors` counts requests that failed for good (a request that succeeded on a retry is a retry,
not an error); a response without `usage` leaves its tokens unknown (`usage_missing`), never 0.
The API key never leaves this module: every message is scrubbed of it."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from bench.config import APIModelSpec
from bench.errors import BenchError, Interrupted, ServerFailed

T = TypeVar("T")
BACKOFF_S = float(os.environ.get("BENCH_API_BACKOFF_S", "1.0"))  # first retry waits up to this
MAX_BACKOFF_S = 60.0


class BadResponse(Exception):
    """A 200 whose body bench cannot use (not JSON, no choices); retried like a 5xx."""


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: rare enough to fall back to backoff
        return None


class Meter:
    """What one thread's requests cost: kept on a sample's record."""

    def __init__(self) -> None:
        self.requests = self.retries = self.prompt_tokens = self.completion_tokens = 0
        self.usage_missing = 0
        self.latency_s = 0.0

    def summary(self) -> dict:
        """This sample's requests; tokens None where a response did not say (no `usage`)."""
        known = not self.usage_missing
        return {"requests": self.requests, "retries": self.retries, "latency_s": self.latency_s,
                "prompt_tokens": self.prompt_tokens if known else None,
                "completion_tokens": self.completion_tokens if known else None,
                **({"usage_missing": self.usage_missing} if self.usage_missing else {})}


class Requester:
    """One client per model; thread-safe; `stats` and `latencies` cover its whole lifetime."""

    def __init__(self, spec: APIModelSpec):
        import openai

        self.spec, self.where = spec, f"model '{spec.name}' ({spec.base_url})"
        key = "EMPTY"  # local servers take any key
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env, "")
            if not key:
                raise BenchError(f"{self.where}: api_key_env names {spec.api_key_env}, which is not "
                                 f"set; export {spec.api_key_env}=<your key> and rerun")
        self._key = key
        self.client = openai.OpenAI(base_url=spec.base_url, api_key=key, max_retries=0,
                                    timeout=spec.timeout)
        self._openai = openai
        self.retryable = (openai.RateLimitError, openai.InternalServerError,
                          openai.APITimeoutError, openai.APIConnectionError, BadResponse,
                          json.JSONDecodeError)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.stats = {"requests": 0, "retries": 0, "errors": 0, "prompt_tokens": 0,
                      "completion_tokens": 0, "usage_missing": 0}
        self.latencies: list[float] = []
        self._next_start = 0.0
        self._local = threading.local()

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key != "EMPTY" else text

    @contextmanager
    def meter(self) -> Iterator[Meter]:
        """Count this thread's requests while the block runs."""
        self._local.meter = meter = Meter()
        try:
            yield meter
        finally:
            self._local.meter = None

    def abort(self) -> None:
        """Stop retrying and cut requests in flight (Ctrl-C)."""
        self.stopping.set()
        self.client.close()

    def _pace(self) -> None:
        """requests_per_minute: request starts at least 60/rpm seconds apart."""
        if not self.spec.requests_per_minute:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + 60.0 / self.spec.requests_per_minute
        if self.stopping.wait(start - now):
            raise Interrupted(2, "")

    def call(self, what: str, send: Callable[[], T], check: Callable[[T], None]) -> T:
        """send() until it returns a response check() accepts, retrying what is transient."""
        meter: Meter | None = getattr(self._local, "meter", None)
        attempt = 0
        while True:
            self._pace()
            t0 = time.monotonic()
            try:
                response = send()
                check(response)
            except self.retryable as exc:
                if self.stopping.is_set():
                    raise Interrupted(2, "") from None
                if attempt >= self.spec.max_retries:
                    with self.lock:
                        self.stats["errors"] += 1  # failed for good
                    raise ServerFailed(f"{self.where}: {what} failed after {attempt} retries: "
                                       f"{self._describe(exc)}") from None
                delay = _retry_after(exc)
                if delay is None:
                    delay = random.uniform(0, min(MAX_BACKOFF_S, BACKOFF_S * 2 ** attempt))
                attempt += 1
                with self.lock:
                    self.stats["retries"] += 1
                if meter:
                    meter.retries += 1
                if self.stopping.wait(delay):
                    raise Interrupted(2, "") from None
                continue
            except self._openai.APIStatusError as exc:
                with self.lock:
                    self.stats["errors"] += 1
                raise ServerFailed(f"{self.where}: {what}: {self._describe(exc)}"
                                   f"{self._hint(exc.status_code)}") from None
            latency = time.monotonic() - t0
            usage = getattr(response, "usage", None)
            missing = usage is None or getattr(usage, "prompt_tokens", None) is None
            used = (0, 0) if missing else (usage.prompt_tokens or 0,
                                           getattr(usage, "completion_tokens", 0) or 0)
            with self.lock:
                self.stats["requests"] += 1
                self.stats["prompt_tokens"] += used[0]
                self.stats["completion_tokens"] += used[1]
                self.stats["usage_missing"] += missing
                self.latencies.append(latency)
            if meter:
                meter.requests += 1
                meter.latency_s += latency
                meter.prompt_tokens += used[0]
                meter.completion_tokens += used[1]
                meter.usage_missing += missing
            return response

    def _describe(self, exc: Exception) -> str:
        status = getattr(exc, "status_code", None)
        text = str(exc) or type(exc).__name__
        if isinstance(exc, json.JSONDecodeError):
            text = f"the response body is not JSON ({exc})"
        return self.scrub(f"HTTP {status}: {text}" if status else text)[:500]

    def _hint(self, status: int | None) -> str:
        if status in (401, 403):
            env = self.spec.api_key_env
            return (f"; check the key in {env}" if env else
                    "; the server wants a key: set api_key_env to the variable that holds it")
        if status == 404:
            return f"; check base_url and that the server serves model '{self.spec.model}'"
        return ""
