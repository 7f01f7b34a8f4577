"""Read FewCLUE/CLUE files as they really are: JSON Lines with CRLF endings, U+2028 inside
strings (so never `str.splitlines()`), a missing trailing newline; C3 as one JSON array."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.errors import BenchError

DATA_ENV = "BENCH_DATA_DIR"
DEMO_DATA_DIR = Path(__file__).parent / "demo_data"


GITHUB = "github"  # data dir value meaning "fetch FewCLUE from its GitHub repo at a pinned commit"


def resolve_data_dir(flag: str | os.PathLike | None = None, suite_value: str | None = None,
                     fetch: Callable[[], Path] | None = None) -> Path:
    """Flag beats env var beats suite file; none of them means the bundled demo data. The value
    'github' means `fetch()` (download, verify, cache) where the caller can fetch."""
    chosen = flag or os.environ.get(DATA_ENV) or suite_value
    if not chosen:
        return DEMO_DATA_DIR
    if fetch is not None and str(chosen) == GITHUB:
        return fetch()
    path = Path(chosen).expanduser()
    if not path.is_dir():
        source = "--data-dir" if flag else (DATA_ENV if os.environ.get(DATA_ENV) else "suite data_dir")
        raise BenchError(
            f"data dir '{path}' (from {source}) does not exist; point it at a folder holding "
            f"fewclue/<task>/ and clue/<task>/, or unset it to use the bundled demo data"
        )
    return path


_FILE_HASHES: dict[tuple, str] = {}  # (path, size, mtime_ns, inode) -> sha256, per process


def file_sha256(path: Path) -> str:
    """Streamed sha256 of one file, memoised per process on (path, size, mtime, inode)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        _FILE_HASHES[key] = digest.hexdigest()
    return _FILE_HASHES[key]


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) per non-blank line. Splits on '\\n' only (U+2028 stays inside
    strings), drops a trailing '\\r' (CRLF files), tolerates a missing final newline."""
    if not path.is_file():
        raise BenchError(f"data file '{path}' not found; check the data dir and the task's split")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BenchError(f"{path}: not UTF-8 (byte {exc.start}); re-save the file as UTF-8") from None
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchError(
                f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                "fix or remove that line"
            ) from None
        if not isinstance(record, dict):
            raise BenchError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
        yield lineno, record


def read_json(path: Path):
    if not path.is_file():
        raise BenchError(f"data file '{path}' not found; check the data dir and the task's split")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
