"""Fetch FewCLUE dev/test files for users without a local data dir.

Files come from GitHub raw at one pinned commit of CLUEbenchmark/FewCLUE and are checked against
the git blob sha1 of that commit (the same files and hashes as shared/data's README), then moved
into place with an atomic rename, so a cache never holds a partial or altered file.

    python -m bench.tasks.download [TASK ...]     # prints the data dir to pass as --data-dir

Cache: $BENCH_CACHE_DIR, else ~/.cache/bench/data; layout fewclue/<folder>/<file>, as bench expects.
CLUE sets (afqmc, ocnli, c3) are not in that repository and are not fetched.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.errors import BenchError, suggest

COMMIT = "62a02c6f31cf32814cfe522f78ef088228840f8d"
URL = "https://raw.githubusercontent.com/CLUEbenchmark/FewCLUE/{commit}/datasets/{path}"
CACHE_ENV = "BENCH_CACHE_DIR"
TIMEOUT_S = 60

# git blob sha1 at COMMIT, path under datasets/
BLOBS: dict[str, str] = {
    "bustm/dev_few_all.json": "921a93aceb86d16ab290d0150183744c579ce3d7",
    "bustm/test_public.json": "4516e721dbb7c9d5d41e349a2078cdd9afbd8281",
    "chid/dev_few_all.json": "e1aa044b750db7b67674505754c9f7d3a429698b",
    "chid/test_public.json": "23fb821ae2fb60c8a8364fb2c61ed219a92fdecf",
    "cluewsc/dev_few_all.json": "938603b1ec08eadc29e56ca0798aba2be1a98a23",
    "cluewsc/test_public.json": "212f3d8f493a4c6c1ac3b572770437c045902a27",
    "csl/dev_few_all.json": "67430cc8e4a993a20320ca4879b8343f601ee23b",
    "csl/test_public.json": "50885fbb13358b3beb974b2a49f668bec2724c66",
    "csldcp/dev_few_all.json": "1247c89869a0a2e626fd1821e6c10ce0732c8140",
    "csldcp/test_public.json": "d77aa6c4bb20b7b57b3aa938d12c6ca7e7003c67",
    "eprstmt/dev_few_all.json": "a11502b11c22e617897233eca1e30d2e9ce47343",
    "eprstmt/test_public.json": "7ec0a3963e51fb85225be3c46f49ccfea2d63775",
    "iflytek/dev_few_all.json": "d08fab0a53c2c20ad1e26809e433317cd03ac7ba",
    "iflytek/test_public.json": "2d2bcaf30b8e47d388df621322db4ab9c37a78dd",
    "ocnli/dev_few_all.json": "587fc824f87bbc644024642288e566f34ff3110e",
    "ocnli/test_public.json": "f9eabfc6abea5517dd40d1267566cc34f71621c8",
    "tnews/dev_few_all.json": "85084b8c1fd3b4362f87bd04aca3a27ebb336790",
    "tnews/test_public.json": "3bb38c97d30b8b532ad4ce7d11a5402e7bc6a631",
}

Opener = Callable[[str], bytes]


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "bench" / "data").expanduser()


def git_blob_sha1(data: bytes) -> str:
    """What `git hash-object` prints for a file with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def url_for(path: str) -> str:
    return URL.format(commit=COMMIT, path=path)


def http_get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "bench-data-fetch"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise BenchError(
            f"could not download {url} ({exc}); check the network, or copy the FewCLUE files "
            f"into a folder yourself and pass it as --data-dir / BENCH_DATA_DIR"
        ) from None


def fetch_file(path: str, root: Path | None = None, opener: Opener | None = None) -> Path:
    """Make sure `root/fewclue/<path>` holds the pinned file; download it if absent or altered."""
    if path not in BLOBS:
        raise BenchError(f"no pinned FewCLUE file '{path}'{suggest(path, BLOBS)}")
    expected = BLOBS[path]
    dest = (root or cache_root()) / "fewclue" / path
    if dest.is_file() and git_blob_sha1(dest.read_bytes()) == expected:
        return dest
    url = url_for(path)
    data = (opener or http_get)(url)
    got = git_blob_sha1(data)
    if got != expected:
        raise BenchError(
            f"{url}: downloaded {len(data)} bytes with git blob sha1 {got}, expected {expected}; "
            f"nothing was saved. Retry; if it persists the mirror serves a different file"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def task_files(tasks: Iterable[str] | None = None, splits: Iterable[str] = ("dev", "test")) -> list[str]:
    """Paths under datasets/ for FewCLUE task names (e.g. ocnli_fc → ocnli/...)."""
    from bench.tasks.fewclue import SPECS

    names = list(tasks) if tasks is not None else list(SPECS)
    paths = []
    for name in names:
        if name not in SPECS:
            raise BenchError(f"'{name}' is not a FewCLUE task that can be downloaded{suggest(name, SPECS)}")
        for split in splits:
            paths += [rel.removeprefix("fewclue/") for rel in SPECS[name].files[split]]
    return paths


def ensure(tasks: Iterable[str] | None = None, splits: Iterable[str] = ("dev", "test"),
           root: Path | None = None, opener: Opener | None = None) -> Path:
    """Fetch what is missing for these tasks and splits; return the data dir to load from."""
    root = root or cache_root()
    for path in task_files(tasks, splits):
        fetch_file(path, root, opener)
    return root


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        root = ensure(args or None)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
