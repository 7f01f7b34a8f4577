"""Reading the files users give bench: text that must be UTF-8, YAML whose keys are unique, and
JSON Lines read one bounded row at a time.

Every failure names the file, the line and what to do. JSON Lines readers never raise for one bad
row: they hand it to a `RowLog` (the bad-row policy, bench/rows.py) and go on.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from bench.errors import BenchError
from bench.rows import RowLog

MAX_ROW_BYTES = 1 << 20  # default bound on one JSON Lines row (1 MiB): FewCLUE rows are < 10 kB


def _utf8_error(path: Path, data: bytes, exc: UnicodeDecodeError) -> str:
    start = exc.start
    line = data.count(b"\n", 0, start) + 1
    column = start - (data.rfind(b"\n", 0, start) + 1) + 1
    return (f"{path}:{line}: not UTF-8 (byte 0x{data[start]:02x} at byte {column} of the line); "
            "re-save the file as UTF-8")


def read_text(path: Path, what: str = "file") -> str:
    """A whole text file as UTF-8 (a BOM is dropped); exit 2 naming the file, line and byte."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: {what} not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BenchError(_utf8_error(path, data, exc)) from None


# ---- YAML -------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML says keys are unique;
    PyYAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _DuplicateKey(key, seen[key], line)
                seen[key] = line
        return super().construct_mapping(node, deep)


class _DuplicateKey(Exception):
    def __init__(self, key, first: int, second: int):
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


def load_yaml(path: Path) -> tuple[object, yaml.Node | None]:
    """(data, node tree) of a YAML file: safe tags only, unique keys, line-precise errors."""
    path = Path(path)
    text = read_text(path)
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _DuplicateKey as dup:
        raise BenchError(
            f"{path}:{dup.second}: key '{dup.key}' is given twice (lines {dup.first} and "
            f"{dup.second}); YAML keeps only one of them, so merge them or delete one") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BenchError(f"{path}{where}: malformed YAML ({problem})") from None
    finally:
        loader.dispose()
    return data, node


# ---- JSON Lines -------------------------------------------------------------------------------


def _skip_rest_of_line(fh, size: int) -> int:
    """Read past the rest of an over-long line in bounded blocks; return its full size."""
    while block := fh.readline(1 << 20):
        size += len(block)
        if block.endswith(b"\n"):
            break
    return size


def iter_jsonl(path: Path, rows: RowLog | None = None, max_row_bytes: int = MAX_ROW_BYTES
               ) -> Iterator[tuple[int, dict]]:
    """(line number, object) per good row. Streams the file: memory stays a small multiple of
    the largest accepted row. Splits on '\\n' only (U+2028 stays inside strings), drops a '\\r'
    before it (CRLF files) and a UTF-8 BOM, tolerates a missing final newline. A row that is not
    UTF-8, not JSON, not an object or longer than `max_row_bytes` goes to `rows` as bad; without
    `rows` it stops the command (exit 2)."""
    path = Path(path)
    if rows is None:
        rows = RowLog(str(path), strict=True)
    if not path.is_file():
        raise BenchError(f"data file '{path}' not found; check the data dir and the task's split")
    with path.open("rb") as fh:
        lineno, first = 0, True
        while raw := fh.readline(max_row_bytes + 2):  # + "\r\n"
            lineno += 1
            line = raw.rstrip(b"\r\n") if raw.endswith(b"\n") else raw
            if len(line) > max_row_bytes:
                size = len(raw) if raw.endswith(b"\n") else _skip_rest_of_line(fh, len(raw))
                rows.bad(f"{path}:{lineno}", f"row of {size:,} bytes is over the {max_row_bytes:,}-"
                         "byte limit (raise max_row_bytes in the suite if it is meant to be)")
                continue
            if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                rows.bad(f"{path}:{lineno}", f"not UTF-8 (byte 0x{line[exc.start]:02x} at byte "
                         f"{exc.start + 1} of the line)")
                continue
            if not text.strip():
                continue
            if first and text.lstrip().startswith("["):
                raise BenchError(
                    f"{path}:{lineno}: this is one JSON array, not JSON Lines (one JSON object per "
                    "line); convert it, e.g. `jq -c '.[]' FILE > FILE.jsonl`")
            first = False
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                rows.bad(f"{path}:{lineno}", f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(record, dict):
                rows.bad(f"{path}:{lineno}", f"expected a JSON object, got {type(record).__name__}")
                continue
            yield lineno, record


def read_json(path: Path):
    """One whole JSON document (C3's files)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"data file '{path}' not found; check the data dir and the task's split")
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


@contextmanager
def atomic_path(out: Path) -> Iterator[Path]:
    """A temporary path beside `out` to write to: on success it replaces `out` (mode 0644: reports
    are meant to be shared), on failure it is removed, so a reader never sees half a file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_WS = re.compile(r"[ \t\r\n]*")


def iter_rows(path: Path, rows: RowLog, max_row_bytes: int = MAX_ROW_BYTES) -> Iterator[tuple[int, dict]]:
    """(line, object) per row of a JSON Lines file (rows bounded by `max_row_bytes`) or of one
    JSON array, read whole as LLaMA-Factory does."""
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head != b"[":
        yield from iter_jsonl(path, rows, max_row_bytes)
        return
    text = read_text(path)
    decoder = json.JSONDecoder()
    pos = _WS.match(text).end() + 1
    line, counted = 1, 0
    while (pos := _WS.match(text, pos).end()) < len(text) and text[pos] != "]":
        line, counted = line + text.count("\n", counted, pos), pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise BenchError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); a JSON array "
                             "cannot be read past its first error: fix it, or convert the file to "
                             "JSON Lines") from None
        if not isinstance(value, dict):
            rows.bad(f"{path}:{line}", f"expected a JSON object, got {type(value).__name__}")
        else:
            yield line, value
        pos = _WS.match(text, end).end()
        if text.startswith(",", pos):
            pos += 1
        elif not text.startswith("]", pos):
            raise BenchError(f"{path}:{text.count(chr(10), 0, pos) + 1}: expected ',' or ']' "
                             "after an array item; the JSON array is malformed")
