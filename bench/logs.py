"""Third-party output — transformers/torch/lm-eval/datasets warnings and their progress bars — goes
to a log file kept with the run instead of the terminal (unless --verbose), with anything that
looks like a credential redacted. The terminal shows bench's own lines: progress, results, errors.
The file's path is in each run's manifest (`log_file`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.files import atomic_path

LIBRARIES = ("transformers", "torch", "lm_eval", "lm-eval", "datasets", "huggingface_hub",
             "accelerate", "peft", "trl", "bitsandbytes", "urllib3", "httpx", "openai", "filelock",
             "fsspec")

_PATTERNS = [
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{12,}"), "[REDACTED]"),
    (re.compile(r"\bhf_[A-Za-z0-9]{12,}"), "[REDACTED]"),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=\-]{8,}"), r"\1[REDACTED]"),
    (re.compile(r"(?i)((?:api[_-]?key|access[_-]?token|auth[_-]?token|token|secret|password|"
                r"authorization)[\"']?\s*[=:]\s*[\"']?)[^\s\"',;}]{4,}"), r"\1[REDACTED]"),
]
_SECRET_ENV = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD)")


def redact(text: str) -> str:
    """The text with credentials replaced: values of secret-looking environment variables, API
    keys by their usual shapes, and `key=value` / `Bearer x` forms."""
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value) >= 8:
            text = text.replace(value, "[REDACTED]")
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class _Redacting(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def log_path(results_dir: Path) -> Path:
    """A fresh log file name for one command, under the results folder."""
    return results_dir / "logs" / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"


@contextmanager
def third_party_output(path: Path, verbose: bool = False, console=None) -> Iterator[Path | None]:
    """While inside, whatever libraries write to stderr — logging, warnings, tqdm bars, C-level
    messages — lands in `path`; `console` (bench's rich console) keeps writing to the terminal.
    The file is redacted when the block ends. Yields the path, or None with `verbose`."""
    if verbose:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(_Redacting("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved_libs = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
                  for name in LIBRARIES}
    try:
        import transformers.utils.logging as hf_logging  # its own stderr handler, added lazily

        hf_logging.disable_default_handler()
        hf_logging.enable_propagation()
    except ImportError:
        hf_logging = None
    root.handlers, root.level = [handler], logging.INFO
    for name in LIBRARIES:
        logging.getLogger(name).handlers, logging.getLogger(name).propagate = [], True
    logging.captureWarnings(True)
    sys.stderr.flush()
    terminal_fd = os.dup(2)
    terminal = os.fdopen(os.dup(terminal_fd), "w", buffering=1, encoding="utf-8", errors="replace")
    saved_file = console.file if console is not None else None
    if console is not None:
        console.file = terminal
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # each distinct warning once, into the log
            yield path
    finally:
        sys.stderr.flush()
        os.dup2(terminal_fd, 2)
        os.close(terminal_fd)
        if console is not None:
            console.file = saved_file
        terminal.close()
        logging.captureWarnings(False)
        for name, (handlers, propagate) in saved_libs.items():
            logging.getLogger(name).handlers, logging.getLogger(name).propagate = handlers, propagate
        root.handlers, root.level = saved_root
        handler.close()
        if hf_logging is not None:
            hf_logging.enable_default_handler()
            hf_logging.disable_propagation()
        _redact_file(path)


def _redact_file(path: Path) -> None:
    """Rewrite the log with credentials redacted (raw writes to stderr were not formatted)."""
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    clean = redact(text)
    if clean != text:
        with atomic_path(path) as tmp:
            tmp.write_text(clean, encoding="utf-8")


def import_bitsandbytes() -> None:
    """Import bitsandbytes (where installed) without the warning its import sets off in torch.

    torch 2.13 warns "`torch.jit.script_method` is deprecated" when its own torch/utils/mkldnn.py
    is imported; bitsandbytes 0.50 imports it (its torch.compile decorators pull in
    torch._inductor), and peft imports bitsandbytes whenever it builds or loads a LoRA. Neither
    call is bench's, so that one warning of that one import is silenced here; call this before
    peft or bitsandbytes is used."""
    if "bitsandbytes" in sys.modules or importlib.util.find_spec("bitsandbytes") is None:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script_method` is deprecated",
                                category=DeprecationWarning)
        import bitsandbytes  # noqa: F401
