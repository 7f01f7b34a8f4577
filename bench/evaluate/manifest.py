"""What a run records about where it ran: versions, git sha, command line, host."""

from __future__ import annotations

import hashlib
import json
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import bench

PACKAGES = ("torch", "transformers", "tokenizers", "peft", "numpy")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "bench": bench.__version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


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
        "git_sha": git_sha(),
        "command": sys.argv,
        "host": socket.gethostname(),
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
