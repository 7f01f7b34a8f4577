"""Training data: the SFT and preference formats people bring, read into two row types.

SFT formats: `alpaca`, `sharegpt` (LLaMA-Factory), `messages` (OpenAI), `xtuner`. Preference
formats: `lf-ranking`, `lf-sharegpt-ranking` (LLaMA-Factory), `trl` (plain, conversational or
implicit prompt). A file's format is told by the keys of its first JSON object (`_FORMATS`, in
order) unless `fmt` names it; a LLaMA-Factory dataset_info.json entry names it too, with column and
role-tag renames (bench/train/dataset_info.py). A file is JSON Lines or one JSON array
(LLaMA-Factory's .json); a folder is its .json/.jsonl files in name order.

Bad rows follow bench's policy (bench/rows.py): logged as file:line and reason, skipped, counted;
the caller runs `check(rows, max_bad_fraction)`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.chat import with_system
from bench.errors import BenchError, suggest
from bench.files import MAX_ROW_BYTES, iter_rows
from bench.rows import RowLog

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}
Turn = tuple[str, str, str]  # (role, content, role as the file writes it)


@dataclass(frozen=True)
class SFTRow:
    """An optional system message, then user/assistant turns ending with the assistant."""

    id: str  # "L<line>", or "<file stem>:L<line>" when a folder holds several files
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class PreferenceRow:
    """A prompt (optional system, then turns ending with the user) and two answers to it."""

    id: str
    prompt: tuple[Message, ...]
    chosen: str
    rejected: str

    @property
    def hash(self) -> str:
        """The pair's content address (its id is only where it sits in a file)."""
        raw = json.dumps([self.prompt, self.chosen, self.rejected], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


# LLaMA-Factory's column names -> the key a format reads under that name (then per-format changes)
_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "history": "history",
            "system": "system", "messages": "conversations", "chosen": "chosen",
            "rejected": "rejected"}
_RENAMED = {"messages": {"messages": "messages"}, "xtuner": {"messages": "conversation"},
            "trl": {"prompt": "prompt"}}
_UNSUPPORTED = ("tools", "images", "videos", "audios", "kto_tag")
_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
         "system_tag": "system", "observation_tag": "observation", "function_tag": "function_call"}
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system"}  # without tags; LLaMA-Factory's tags make it exact
_OPENAI_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}
_EXPECTED = {None: "a user message first", "user": "an assistant message after a user message",
             "assistant": "a user message after an assistant message"}
_A = {"user": "a user", "assistant": "an assistant"}


class _Row:
    """A record seen through the column renames; reasons name the file's own keys."""

    def __init__(self, data: dict, keys: dict):
        self.data, self.keys = data, keys

    def key(self, name: str) -> str:
        return self.keys.get(name, name) or name

    def get(self, name: str):
        key = self.keys.get(name, name)
        return None if key is None else self.data.get(key)

    def text(self, name: str) -> str:
        self._present(name)
        return _text(self.get(name), f"'{self.key(name)}'")

    def _present(self, name: str) -> None:
        """A key given as null is named as such (not as missing)."""
        key = self.keys.get(name, name)
        if key is not None and key in self.data and self.data[key] is None:
            raise ValueError(f"'{key}' is null")

    def optional(self, name: str) -> str | None:
        return _optional(self.get(name), f"'{self.key(name)}'")

    def need(self, name: str, typ: type, desc: str):
        self._present(name)
        value, what = self.get(name), f"'{self.key(name)}'"
        if value is None:
            raise ValueError(f"{what} is missing")
        if not isinstance(value, typ):
            raise ValueError(f"{what} must be {desc}, not {type(value).__name__}")
        if not value and typ is list:
            raise ValueError(f"{what} is empty")
        return value


def _text(value, what: str) -> str:
    if value is None:
        raise ValueError(f"{what} is missing")
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} is empty")
    return value


def _optional(value, what: str) -> str | None:
    """An optional text: absent, null or blank is no text; any other non-string is an error."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _text(value, what)


def _message(msg, what: str, role_key: str, content_key: str, roles: dict) -> Turn:
    if not isinstance(msg, dict):
        raise ValueError(f"{what} must be an object with '{role_key}' and '{content_key}', "
                         f"not {type(msg).__name__}")
    tag = msg.get(role_key)
    if tag is None:
        raise ValueError(f"{what}: '{role_key}' is missing")
    if not isinstance(tag, str) or tag not in roles:
        raise ValueError(f"{what}: unknown role {tag!r} in '{role_key}' "
                         f"(expected one of: {', '.join(roles)})")
    read = _optional if roles[tag] == "system" else _text  # an empty system prompt is none
    return roles[tag], read(msg.get(content_key), f"{what}: '{content_key}'") or "", tag


def _turns(row: _Row, name: str, tags: dict | None = None, sharegpt: bool = False) -> list[Turn]:
    """The messages of list `name`: sharegpt's (from/value, or as `tags` say) or OpenAI's."""
    role_key, content_key, roles = ("role", "content", _OPENAI_ROLES) if not sharegpt else \
        _sharegpt_tags(tags)
    what = f"'{row.key(name)}'"
    return [_message(m, f"{what} turn {i}", role_key, content_key, roles)
            for i, m in enumerate(row.need(name, list, "a list of messages"), 1)]


def _sharegpt_tags(tags: dict | None) -> tuple[str, str, dict]:
    if not tags:
        return "from", "value", _SHAREGPT_ROLES
    t = {**_TAGS, **tags}
    return t["role_tag"], t["content_tag"], {t["user_tag"]: "user", t["assistant_tag"]: "assistant",
                                             t["system_tag"]: "system"}


def _chat(turns: list[Turn], what: str, last: str) -> tuple[Message, ...]:
    """Messages in the one order bench trains on: an optional system message first, then user and
    assistant alternating from the user, ending with `last`."""
    messages, prev = [], None
    for i, (role, content, tag) in enumerate(turns, 1):
        if role == "system" and i > 1:
            raise ValueError(f"{what} turn {i}: a system message may only come first")
        if role != "system" and role != ("assistant" if prev == "user" else "user"):
            raise ValueError(f"{what} turn {i}: expected {_EXPECTED[prev]}, got {tag!r}")
        if content:
            messages.append({"role": role, "content": content})
        prev = prev if role == "system" else role
    if prev is None:
        raise ValueError(f"{what} holds no user message")
    if prev != last:
        raise ValueError(f"{what} ends with {_A[prev]} message; the last must be {_A[last]} one")
    return tuple(messages)


def _alpaca_prompt(row: _Row) -> tuple[Message, ...]:
    """History pairs, then instruction + "\\n" + input (LLaMA-Factory's join), system first."""
    prompt, query = row.text("instruction"), row.optional("input")
    turns: list[Turn] = []
    if row.get("history") is not None:
        what = f"'{row.key('history')}'"
        for i, pair in enumerate(row.need("history", list, "a list of [user, assistant] pairs"), 1):
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"{what} item {i} must be a [user, assistant] pair")
            turns += [("user", _text(pair[0], f"{what} item {i}: the user text"), "user"),
                      ("assistant", _text(pair[1], f"{what} item {i}: the assistant text"),
                       "assistant")]
    turns.append(("user", f"{prompt}\n{query}" if query else prompt, "user"))
    return with_system(_chat(turns, "the row", "user"), row.optional("system"))


def _alpaca(row: _Row, tags: dict | None) -> tuple[Message, ...]:
    return (*_alpaca_prompt(row), {"role": "assistant", "content": row.text("output")})


def _sharegpt(row: _Row, tags: dict | None, last: str = "assistant") -> tuple[Message, ...]:
    """A top-level `system` is used unless the first message is a system message."""
    turns = _turns(row, "conversations", tags, sharegpt=True)
    return with_system(_chat(turns, f"'{row.key('conversations')}'", last), row.optional("system"))


def _messages(row: _Row, tags: dict | None) -> tuple[Message, ...]:
    return _chat(_turns(row, "messages"), f"'{row.key('messages')}'", "assistant")


def _xtuner(row: _Row, tags: dict | None) -> tuple[Message, ...]:
    """XTuner's `conversation`: {system?, input, output} per turn, the system in the first."""
    what, turns, system = f"'{row.key('conversation')}'", [], None
    for i, turn in enumerate(row.need("conversation", list, "a list of turns"), 1):
        where = f"{what} turn {i}"
        if not isinstance(turn, dict):
            raise ValueError(f"{where} must be an object with 'input' and 'output', "
                             f"not {type(turn).__name__}")
        own = _optional(turn.get("system"), f"{where}: 'system'")
        if own and i == 1:
            system = own
            turns.append(("system", own, "system"))
        elif own and own != system:
            raise ValueError(f"{where}: 'system' differs from the first turn's; only one system "
                             "prompt per conversation is supported")
        turns += [("user", _text(turn.get("input"), f"{where}: 'input'"), "user"),
                  ("assistant", _text(turn.get("output"), f"{where}: 'output'"), "assistant")]
    return _chat(turns, what, "assistant")


Pair = tuple[tuple[Message, ...], str, str]


def _lf_ranking(row: _Row, tags: dict | None) -> Pair:
    return _alpaca_prompt(row), row.text("chosen"), row.text("rejected")


def _lf_sharegpt_ranking(row: _Row, tags: dict | None) -> Pair:
    """The conversation ends with the user; `chosen` and `rejected` are one message each."""
    role_key, content_key, roles = _sharegpt_tags(tags)
    sides = {name: [_message(row.need(name, dict, f"one message object with '{role_key}' and "
                                      f"'{content_key}'"),
                             f"'{row.key(name)}'", role_key, content_key, roles)]
             for name in ("chosen", "rejected")}
    return _sharegpt(row, tags, last="user"), *_answers(row, sides)


def _answers(row: _Row, sides: dict[str, list[Turn]], after: str = "") -> tuple[str, str]:
    """The text of `chosen` and `rejected`, each one assistant message."""
    for name, side in sides.items():
        if len(side) != 1 or side[0][0] != "assistant":
            got = f"{len(side)} messages" if len(side) != 1 else f"a {side[0][2]!r} message"
            raise ValueError(f"'{row.key(name)}' must hold one assistant message{after}, got {got}")
    return sides["chosen"][0][1], sides["rejected"][0][1]


def _trl(row: _Row, tags: dict | None) -> Pair:
    """TRL's plain rows (strings, an optional `system`) or conversational ones (message lists;
    without `prompt`, the messages `chosen` and `rejected` share from the start are the prompt)."""
    prompt, chosen = row.get("prompt"), row.get("chosen")
    if not isinstance(prompt, list) and not (prompt is None and isinstance(chosen, list)):
        if prompt is None and isinstance(chosen, str):
            raise ValueError("'prompt' is missing (an implicit prompt is read only from "
                             "conversational 'chosen' and 'rejected')")
        user = ({"role": "user", "content": row.text("prompt")},)
        return with_system(user, row.optional("system")), row.text("chosen"), row.text("rejected")
    chosen, rejected = _turns(row, "chosen"), _turns(row, "rejected")
    if chosen == rejected:
        raise ValueError(f"'{row.key('chosen')}' equals '{row.key('rejected')}'")
    if prompt is None:
        shared = 0
        while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
            shared += 1
        what, after, turns = "the messages 'chosen' and 'rejected' share", " after them", \
            chosen[:shared]
        chosen, rejected = chosen[shared:], rejected[shared:]
    else:
        what, after, turns = f"'{row.key('prompt')}'", "", _turns(row, "prompt")
    answers = _answers(row, {"chosen": chosen, "rejected": rejected}, after)
    return _chat(turns, what, "user"), *answers


# name: (kind, reader, the keys a row needs). A file is in the first format of its kind whose first
# key its first row has (so a TRL row is told by 'chosen', which its implicit-prompt form keeps).
_FORMATS: dict[str, tuple[str, Callable, tuple[str, ...]]] = {
    "xtuner": ("sft", _xtuner, ("conversation",)),
    "sharegpt": ("sft", _sharegpt, ("conversations",)),
    "messages": ("sft", _messages, ("messages",)),
    "alpaca": ("sft", _alpaca, ("instruction", "output")),
    "lf-sharegpt-ranking": ("preference", _lf_sharegpt_ranking, ("conversations", "chosen",
                                                                 "rejected")),
    "lf-ranking": ("preference", _lf_ranking, ("instruction", "chosen", "rejected")),
    "trl": ("preference", _trl, ("chosen", "rejected", "prompt")),
}


def _keys(fmt: str | None, columns: dict | None) -> dict:
    """The file's key for each key `fmt` reads (LLaMA-Factory's own names when `fmt` is None)."""
    own = {**_COLUMNS, **_RENAMED.get(fmt, {})}
    return {own[column]: key for column, key in (columns or {}).items()}


def _detect(record: dict, kind: str, keys: dict) -> str | None:
    return next((name for name, (k, _, needs) in _FORMATS.items()
                 if k == kind and keys.get(needs[0], needs[0]) in record), None)


def _check_names(given: dict | None, known: dict, what: str, where: str) -> None:
    for name, value in (given or {}).items():
        if name in _UNSUPPORTED:
            raise BenchError(f"{where}{what} '{name}' is not supported: bench trains on text "
                             "conversations only")
        if name not in known:
            raise BenchError(f"{where}unknown {what} '{name}'{suggest(name, known)}")
        if value is not None and not isinstance(value, str):
            raise BenchError(f"{where}{what} '{name}' must name a key, not {value!r}")


def _files(path: Path) -> list[Path]:
    files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl")) \
        if path.is_dir() else [path]
    if not files:
        raise BenchError(f"{path}: the folder holds no .json or .jsonl file")
    for file in files:
        if not file.is_file():
            raise BenchError(f"training data file '{file}' not found")
        if file.suffix.lower() in (".csv", ".parquet", ".arrow"):
            raise BenchError(f"{file}: {file.suffix} files are not read; convert it to JSON Lines "
                             "(one JSON object per line)")
    return files


def _read(path: str | Path, kind: str, fmt: str, rows: RowLog | None, columns: dict | None,
          tags: dict | None, max_row_bytes: int, limit: int | None) -> tuple[list, RowLog]:
    names = [n for n, (k, _, _) in _FORMATS.items() if k == kind]
    if fmt != "auto" and fmt not in names:
        raise BenchError(f"unknown {kind} data format '{fmt}'{suggest(fmt, ['auto', *names])}")
    _check_names(columns, _COLUMNS, "column", "")
    _check_names(tags, _TAGS, "tag", "")
    path = Path(path)
    files = _files(path)
    rows = rows if rows is not None else RowLog(str(path))
    out: list = []
    for file in files:
        prefix = f"{file.stem}:" if len(files) > 1 else ""
        name = None if fmt == "auto" else fmt
        for lineno, record in iter_rows(file, rows, max_row_bytes):
            where = f"{file}:{lineno}"
            if name is None and (name := _detect(record, kind, _keys(None, columns))) is None:
                signs = ", ".join(f"'{_FORMATS[n][2][0]}' ({n})" for n in names)
                rows.bad(where, f"cannot tell the {kind} format: expected a key {signs}; got "
                         f"{', '.join(map(repr, record)) or 'no key'}")
                continue
            row = _Row(record, _keys(name, columns))
            try:
                out.append(_build(kind, name, f"{prefix}L{lineno}", row, tags))
            except ValueError as exc:
                rows.bad(where, _reason(exc, row, name, kind, columns))
                continue
            rows.kept += 1
            if limit is not None and len(out) >= limit:
                return out, rows
    return out, rows


def _build(kind: str, fmt: str, sid: str, row: _Row, tags: dict | None):
    if kind == "sft":
        return SFTRow(sid, _FORMATS[fmt][1](row, tags))
    prompt, chosen, rejected = _FORMATS[fmt][1](row, tags)
    if chosen == rejected:
        raise ValueError(f"'{row.key('chosen')}' equals '{row.key('rejected')}'")
    return PreferenceRow(sid, prompt, chosen, rejected)


def _reason(exc: ValueError, row: _Row, fmt: str, kind: str, columns: dict | None) -> str:
    """What is wrong; for a row in another format or with none of its format's keys, which keys
    were expected."""
    needs = _FORMATS[fmt][2]
    other = None if row.key(needs[0]) in row.data else _detect(row.data, kind, _keys(None, columns))
    if not other and any(row.key(k) in row.data for k in needs):
        return str(exc)
    looks = f" (it looks like {other})" if other else ""
    return (f"expected {fmt} keys {', '.join(repr(row.key(k)) for k in needs)}; got "
            f"{', '.join(map(repr, row.data)) or 'no key'}{looks}")


def sft_row(record: dict, sid: str) -> SFTRow:
    """One record in any SFT format, told by its keys; a ValueError says what is wrong."""
    name = _detect(record, "sft", {})
    if name is None:
        raise ValueError(f"cannot tell the format: got {', '.join(map(repr, record)) or 'no key'}")
    return _build("sft", name, sid, _Row(record, _keys(name, None)), None)


def read_sft(path: str | Path, fmt: str = "auto", rows: RowLog | None = None,
             columns: dict | None = None, tags: dict | None = None,
             max_row_bytes: int = MAX_ROW_BYTES, limit: int | None = None) -> tuple[list[SFTRow], RowLog]:
    """SFT rows of a file or folder (`fmt` one of alpaca, sharegpt, messages, xtuner, or auto).
    `columns` maps LLaMA-Factory's column names (prompt, query, response, history, system,
    messages) to the file's keys; `tags` are sharegpt's role/content tags. At most `limit` rows."""
    return _read(path, "sft", fmt, rows, columns, tags, max_row_bytes, limit)


def read_preference(path: str | Path, fmt: str = "auto", rows: RowLog | None = None,
                    columns: dict | None = None, tags: dict | None = None,
                    max_row_bytes: int = MAX_ROW_BYTES,
                    limit: int | None = None) -> tuple[list[PreferenceRow], RowLog]:
    """Preference pairs of a file or folder (`fmt` one of lf-ranking, lf-sharegpt-ranking, trl,
    or auto); `columns` also renames chosen and rejected. As `read_sft` otherwise."""
    return _read(path, "preference", fmt, rows, columns, tags, max_row_bytes, limit)
