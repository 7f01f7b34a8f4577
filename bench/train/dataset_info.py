"""LLaMA-Factory's dataset_info.json: an entry (file, ranking, formatting, column and tag renames)
as the description of a local file that bench/train/data.py reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, suggest
from bench.files import MAX_ROW_BYTES, read_json
from bench.rows import RowLog
from bench.train.data import (
    _COLUMNS,
    _TAGS,
    PreferenceRow,
    SFTRow,
    _check_names,
    read_preference,
    read_sft,
)


@dataclass(frozen=True)
class DatasetSource:
    """One dataset_info.json entry: where the file is, what it holds, how to read it."""

    path: Path
    kind: str  # "sft" | "preference"
    fmt: str
    columns: dict  # LLaMA-Factory column name -> the file's key (None: not read)
    tags: dict  # sharegpt role/content tags


def load_dataset_info(path: str | Path, name: str) -> DatasetSource:
    """Dataset `name` of a LLaMA-Factory dataset_info.json. As in LLaMA-Factory, `file_name` is
    relative to the json's folder, and `system` and `history` are read only when `columns` names
    them."""
    path = Path(path)
    info = read_json(path)
    if not isinstance(info, dict):
        raise BenchError(f"{path}: expected an object of datasets, got {type(info).__name__}")
    if name not in info:
        raise BenchError(f"{path}: no dataset '{name}'{suggest(name, info)}")
    entry, where = info[name], f"{path}: dataset '{name}': "
    if not isinstance(entry, dict):
        raise BenchError(f"{where}expected an object, got {type(entry).__name__}")
    if not isinstance(entry.get("file_name"), str) or "hf_hub_url" in entry:
        raise BenchError(f"{where}'file_name' is missing: bench reads local files only (no "
                         "hf_hub_url, ms_hub_url, script_url); download the data and name it there")
    formatting = entry.get("formatting", "alpaca")
    if formatting not in ("alpaca", "sharegpt", "openai"):
        raise BenchError(f"{where}unknown formatting '{formatting}'"
                         f"{suggest(str(formatting), ['alpaca', 'sharegpt', 'openai'])}")
    ranking, columns, tags = (entry.get("ranking", False), entry.get("columns", {}),
                              entry.get("tags", {}))
    if not (isinstance(ranking, bool) and isinstance(columns, dict) and isinstance(tags, dict)):
        raise BenchError(f"{where}'ranking' must be true or false, 'columns' and 'tags' objects")
    _check_names(columns, _COLUMNS, "column", where)
    _check_names(tags, _TAGS, "tag", where)
    alpaca = formatting == "alpaca"  # "openai" is read as sharegpt with its tags
    unread = {"system": None, "history": None} if alpaca else {"system": None}
    fmt = ("lf-ranking" if ranking else "alpaca") if alpaca else \
        ("lf-sharegpt-ranking" if ranking else "sharegpt")
    file = path.parent / entry["file_name"]
    if not file.exists():
        raise BenchError(f"{where}'{entry['file_name']}' not found (looked for {file})")
    return DatasetSource(file, "preference" if ranking else "sft", fmt, {**unread, **columns},
                         tags)


def read_source(source: DatasetSource, rows: RowLog | None = None,
                max_row_bytes: int = MAX_ROW_BYTES, limit: int | None = None
                ) -> tuple[list[SFTRow] | list[PreferenceRow], RowLog]:
    """The rows of a dataset_info.json entry."""
    read = read_sft if source.kind == "sft" else read_preference
    return read(source.path, source.fmt, rows, source.columns, source.tags, max_row_bytes, limit)
