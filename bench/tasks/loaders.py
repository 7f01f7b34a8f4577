"""Where task data lives (a data dir, the bundled demo set, or GitHub) and file checksums. The
files themselves are read by bench/files.py: JSON Lines with CRLF endings, U+2028 inside strings,
a missing trailing newline; C3 as one JSON array."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
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
