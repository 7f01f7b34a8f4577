"""The locks bench's environments are installed from, and how far a running one is from its lock.

`requirements/bench.lock` (.venv: bench with every extra the tests use) and
`requirements/opencompass.lock` (.venv-oc) are compiled by `make lock` (uv pip compile) with the
exact version and sha256 of every package; `make install` installs from them only. Every run
records which lock its environment came from and whether it still matches (`lock_record`), and
the test suite fails on a drifted .venv with the one command that fixes it (`python -m
bench.lockfile`).
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH_LOCK = REPO / "requirements" / "bench.lock"
OC_LOCK = REPO / "requirements" / "opencompass.lock"
FIX = "make install (it recreates .venv from requirements/bench.lock)"
# Installed beside a lock but not in it: the project itself and the installer that came with Python.
NOT_LOCKED = frozenset({"bench", "pip"})
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = BENCH_LOCK) -> dict[str, str]:
    """name -> exact version, for every `name==version` line of a lock."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := _PIN.match(line):
            pins[normalize(m[1])] = m[2]
    return pins


def installed() -> dict[str, str]:
    """name -> version of every distribution this interpreter sees."""
    return {normalize(d.metadata["Name"]): d.version for d in metadata.distributions()
            if d.metadata["Name"]}


def drift(lock: dict[str, str], have: dict[str, str]) -> list[str]:
    """How an environment differs from a lock, one line per package (empty when it matches)."""
    lines = [f"{name}: lock {want}, installed {have.get(name, 'nothing')}"
             for name, want in sorted(lock.items()) if have.get(name) != want]
    lines += [f"{name}: installed {version}, not in the lock"
              for name, version in sorted(have.items()) if name not in lock and name not in NOT_LOCKED]
    return lines


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def lock_record(path: Path = BENCH_LOCK) -> dict | None:
    """What a run records about its environment's lock: which file (by digest) and whether the
    running environment still equals it. None when bench runs from no checkout with a lock (a
    `pip install bench` into an environment of one's own: only the package versions say what ran)."""
    if not path.is_file():
        return None
    found = drift(read_lock(path), installed())
    return {"file": path.relative_to(REPO).as_posix(), "sha256": digest(path),
            "matches": not found, **({"drift": found[:20], "n_drift": len(found)} if found else {})}


def main(argv: list[str]) -> int:
    """`python -m bench.lockfile [LOCK]`: exit 1 with each difference when this environment is
    not its lock (make install runs it after installing)."""
    path = Path(argv[0]) if argv else BENCH_LOCK
    lock = read_lock(path)
    found = drift(lock, installed())
    if found:
        print(f"{sys.prefix} differs from {path} in {len(found)} packages:", *found[:40], sep="\n  ",
              file=sys.stderr)
        return 1
    print(f"{sys.prefix} equals {path} ({len(lock)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
