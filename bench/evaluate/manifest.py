"""What a run records about where it ran: versions, git sha, command line, host."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import bench
from bench.lockfile import lock_record

# The packages whose version can move a number bench stores (opencompass lives in its own venv:
# an OpenCompass task records that venv's version with the task).
PACKAGES = ("torch", "transformers", "tokenizers", "peft", "trl", "bitsandbytes", "accelerate",
            "lm-eval", "numpy")


def package_versions() -> dict[str, str]:
    """Python, bench and PACKAGES; where torch runs: its CPU kernel path (`cpu_capability`: the
    same model and inputs can round differently on AVX2 and AVX512) and CUDA/cuDNN when a GPU is
    there."""
    versions = {"python": platform.python_version(), "bench": bench.__version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions | _torch_runtime()


def _torch_runtime() -> dict[str, str]:
    torch = sys.modules.get("torch")  # not loaded: no number of this process came from it
    if torch is None:
        return {}
    found = {"cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if torch.cuda.is_available():
        found |= {"cuda": str(torch.version.cuda), "cudnn": str(torch.backends.cudnn.version()),
                  "gpu": torch.cuda.get_device_name(0)}
    return found


def git_sha(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd or Path(bench.__file__).parent,
            capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment() -> dict:
    return {
        "packages": package_versions(),
        "lock": lock_record(),  # the lock this environment was installed from, and if it still is
        "git_sha": git_sha(),
        "command": sys.argv,
        "host": socket.gethostname(),
        "pid": os.getpid(),  # with host: a `running` run whose process is gone was killed
        "platform": platform.platform(),
    }


def cache_key(model_fp: str, task_fp: str, sample_hash: str, decoding: dict, backend: str) -> str:
    """The content address of one scored sample: equal keys, equal answer, no model call."""
    payload = json.dumps(
        [model_fp, task_fp, sample_hash, decoding, backend], sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def score_key(cache_key: str, scorer_fp: str) -> str:
    """The content address of one score: an output (by its key) under one scorer."""
    return hashlib.sha256(f"{cache_key}|{scorer_fp}".encode()).hexdigest()


def fingerprint_of(*parts) -> str:
    """sha256 over JSON parts (a scorer's name, version and settings)."""
    raw = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()
