"""Shared test helpers: run the CLI as a real subprocess, write small configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("BENCH_TEST_DATA_DIR", ROOT.parent / "shared" / "data"))


def require(ok: bool, reason: str) -> None:
    """Skip with the reason on a user's machine; fail under CI=true, where it must be there."""
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must provide it")
        pytest.skip(reason)


def require_shared_data() -> Path:
    data = shared_data_dir()
    require((data / "fewclue").is_dir(),
            f"FewCLUE/CLUE data not found at {data} (set BENCH_TEST_DATA_DIR)")
    return data


def bench_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 600,
              **popen) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if k != "BENCH_DATA_DIR"}
    full_env = {**inherited, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=cwd or ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout, **popen)


def write_models(path: Path, **dirs: Path) -> Path:
    lines = ["models:"]
    for name, d in dirs.items():
        lines += [f"  - name: {name}", f"    path: {d}", "    device: cpu", "    dtype: float32"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_suite(path: Path, name: str, tasks: list[str], mode: str = "gen", **extra) -> Path:
    lines = [f"name: {name}", f"mode: {mode}", f"tasks: [{', '.join(tasks)}]"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
