"""Start an engine's OpenAI-compatible server for a model entry, wait until it lists the model,
and stop it: its process group gets SIGTERM, then SIGKILL after a grace period."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.config import ModelSpec, looks_local
from bench.errors import BenchError, ServerFailed
from bench.serve.engines import command, executable

GRACE_S = 10.0


@dataclass
class Server:
    """A running server: `entry` is the models.yaml entry (backend: openai) that points at it."""

    name: str
    engine: str
    base_url: str
    model_id: str
    process: subprocess.Popen
    log_path: Path
    entry: dict
    tmp: Path | None = None
    stopped: bool = field(default=False, init=False)

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after GRACE_S; temporary folder removed.
        Ctrl-C or SIGTERM while waiting skips straight to SIGKILL."""
        if self.stopped:
            return
        restore = _hurry_on_signal()
        try:
            _signal_group(self.process, signal.SIGTERM)
            self.process.wait(GRACE_S)
        except (subprocess.TimeoutExpired, _Hurry):
            pass
        finally:
            if self.process.poll() is None:
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait()
            _signal_group(self.process, signal.SIGKILL)  # helpers left behind by the leader
            if self.tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
            self.stopped = True
            restore()

    def log_tail(self, n: int = 20) -> str:
        from bench.logs import redact

        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return redact("\n".join(lines[-n:]))


class _Hurry(BaseException):
    """SIGINT or SIGTERM while the server is stopping: kill it now."""


def _hurry_on_signal():
    """Until the returned function is called, SIGINT/SIGTERM raise _Hurry (instead of leaving
    the server running without bench); a no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def hurry(_signum, _frame):
        raise _Hurry

    previous = {s: signal.signal(s, hurry) for s in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(s, h if h is not None else signal.SIG_DFL)
                    for s, h in previous.items()]


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # started in its own session: its group id is its pid
    except (ProcessLookupError, PermissionError):
        pass


def spawn(argv: list[str], log) -> subprocess.Popen:
    """A server process in its own session (stopped as a group), writing to `log`, that dies
    with bench: a SIGKILLed bench cannot stop it, so on Linux the kernel sends it SIGTERM when
    its parent ends (PR_SET_PDEATHSIG; the kernel ties it to the thread that spawned it, so call
    this from a thread that lives as long as the server: bench serves from the main thread)."""
    parent = os.getpid()

    def die_with_parent() -> None:  # runs in the child, before the server starts
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # not Linux: the server outlives a killed bench
            return
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=die_with_parent,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def free_port(host: str, port: int = 0) -> int:
    """`port` if nothing listens there (0: any free port), else a BenchError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            s.bind((host, port))
        except OSError as exc:
            raise BenchError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another "
                             "--port, or --port 0 for a free one") from None
        return s.getsockname()[1]


def url_host(host: str) -> str:
    """The address clients use: a wildcard bind is reached at the loopback address."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"[{host}]" if ":" in host else host


def entry_for(spec: ModelSpec, backend, base_url: str, model_id: str) -> dict:
    """The models.yaml entry (backend: openai) for the served model; `backend` is its HFBackend."""
    local = looks_local(spec.path)
    entry = {"name": f"{spec.name}-served", "backend": "openai", "base_url": base_url,
             "model": model_id, "endpoint": "completions" if backend.mode == "base" else "chat"}
    if spec.template != "auto":
        entry["template"] = spec.template
    entry["tokenizer"] = str(Path(spec.path).expanduser().resolve()) if local else spec.path
    if spec.trust_remote_code:
        entry["trust_remote_code"] = True
    if spec.system:
        entry["system"] = spec.system
    generation = spec.generation.model_dump(exclude_defaults=True)
    if generation:
        entry["generation"] = generation
    entry["weights_fingerprint"] = backend.fingerprint
    return entry


def listed_models(base_url: str, timeout: float = 2.0) -> list[str] | None:
    """The ids GET {base_url}/models lists; None while the server does not answer."""
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=timeout) as response:
            data = json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError):  # refused, reset, timed out, HTTP errors, not JSON yet
        return None
    return [m.get("id") for m in data.get("data", []) if isinstance(m, dict)] if isinstance(
        data, dict) else None


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)


@contextmanager
def serving(spec: ModelSpec, engine: str = "transformers", host: str = "127.0.0.1",
            port: int = 0, log_dir: Path = Path("results/logs"),
            timeout: float = 600) -> Iterator[Server]:
    """A server for `spec`, ready (it lists its model id) when this yields; stopped on exit.
    port 0 picks a free port. The server's output goes to log_dir/serve-<name>-<port>.log."""
    from bench.backends.hf import HFBackend
    from bench.serve.prepare import prepare

    exe = executable(engine)  # before anything slow: a missing engine says how to install it
    port = free_port(host, port)
    backend = HFBackend(spec)  # checks that the model loads; gives its mode and fingerprint
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"serve-{_safe(spec.name)}-{port}.log"
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    server = None
    try:
        launch = command(engine, spec, prepare(engine, spec, backend.tokenizer, tmp), exe, host,
                         port)
        base_url = f"http://{url_host(host)}:{port}/v1"
        entry = entry_for(spec, backend, base_url, launch.model_id)
        if engine == "transformers":
            from huggingface_hub import constants

            Path(constants.HF_HUB_CACHE).mkdir(parents=True, exist_ok=True)  # GET /v1/models
        with open(log_path, "w", encoding="utf-8") as log:
            log.write(f"$ {' '.join(launch.argv)}\n")
            log.flush()
            server = Server(spec.name, engine, base_url, launch.model_id,
                            spawn(launch.argv, log), log_path, entry, tmp)
        _wait_ready(server, timeout)
        yield server
    finally:
        if server is not None:
            server.stop()  # removes tmp too
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _wait_ready(server: Server, timeout: float) -> None:
    where = f"model '{server.name}' ({server.engine})"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            raise ServerFailed(f"{where}: the server exited with code {code} before it was "
                               f"ready; its last log lines:\n{server.log_tail()}\n  full log: "
                               f"{server.log_path}")
        ids = listed_models(server.base_url)
        if ids is not None and server.model_id in ids:
            return
        time.sleep(0.5)
    raise ServerFailed(f"{where}: the server did not list '{server.model_id}' at "
                       f"{server.base_url}/models within {timeout:g} s; read its log "
                       f"{server.log_path}, or raise --timeout")
