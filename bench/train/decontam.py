"""Held-out contamination: which held-out items share a long span of characters with training data.

Texts are compared as character n-grams after normalisation: NFKC (full-width letters, digits and
punctuation become their ASCII forms), everything but letters and digits dropped (punctuation,
symbols, whitespace), case folded. So "ＡＢＣ，１２３！" and "abc 123" are the same text.

The default n is 13 characters. GPT-3's decontamination used 13 *words*: long enough that unrelated
texts do not share one by chance. Chinese text has no word boundaries to count, so bench counts
characters, and 13 keeps the same property there: what unrelated Chinese texts do share are idioms
(4 characters) and stock phrases of questions ("下列说法正确的是", 8; "请从A和B中进行选择", 10 once
normalised), all shorter, while a copied question of 20 characters or more still yields several
13-grams (13 words of GPT-3's, about 20-26 characters, would miss copies of short items). Items
shorter than n once normalised have no n-gram and are never reported: pass a smaller n for sets of
short items (some FewCLUE sentences are 10-20 characters).

Cost: the held-out n-grams are hashed (64-bit polynomial hashes) into one sorted array; training
texts are streamed in chunks, hashed with a vectorised rolling hash and looked up by binary search.
Time is linear in the training characters, memory bounded by the held-out set and one chunk, and
each match is traced to its training id.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.train.data import PreferenceRow, SFTRow, read_preference, read_sft

N = 13
SHOWN_IDS = 5  # training ids kept per overlap
_CHUNK = 1 << 20  # training characters hashed at once
_BASE = np.uint64(0x100000001B3)  # odd multiplier; sums wrap modulo 2**64
_DROP = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Overlap:
    """One held-out item found in training."""

    id: str  # the held-out item
    train_ids: tuple[str, ...]  # the first SHOWN_IDS training texts sharing an n-gram with it
    n_train: int  # how many training texts share one
    span: str  # the longest span it shares with one training text, as the held-out item writes it
    share: float  # the part of its n-grams found anywhere in training


def normalise(text: str) -> str:
    """NFKC, letters and digits only, case folded."""
    return _DROP.sub("", unicodedata.normalize("NFKC", text)).casefold()


def _hashes(text: str, n: int) -> np.ndarray:
    """The hash of every n-character window of `text` (none when it is shorter than n)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    m = len(codes) - n + 1
    out = np.zeros(max(m, 0), np.uint64)
    for j in range(n if m > 0 else 0):
        out *= _BASE
        out += codes[j:j + m]
    return out


def _found(table: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Which of `hashes` are in the sorted array `table`."""
    at = np.minimum(np.searchsorted(table, hashes), len(table) - 1)
    return table[at] == hashes


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    """(length, start) of the longest run of True in `mask`."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    best = int(np.argmax(stops - starts))
    return int(stops[best] - starts[best]), int(starts[best])


def _span(text: str, norm: str, start: int, end: int) -> str:
    """Characters [start, end) of the normalised text as `text` writes them (normalised when the
    mapping back is not exact, as for a character that NFKC joins with the next)."""
    pieces = [normalise(ch) for ch in text]
    if "".join(pieces) != norm:
        return norm[start:end]
    where = [i for i, piece in enumerate(pieces) for _ in piece]
    return text[where[start]:where[end - 1] + 1]


def _chunks(train_texts: Iterable[tuple[str, str]]) -> Iterator[tuple[list[str], list[str]]]:
    ids, norms, size = [], [], 0
    for tid, text in train_texts:
        ids.append(tid)
        norms.append(normalise(text))
        size += len(norms[-1])
        if size >= _CHUNK:
            yield ids, norms
            ids, norms, size = [], [], 0
    if ids:
        yield ids, norms


def _hits(norms: list[str], table: np.ndarray, n: int) -> dict[int, np.ndarray]:
    """For each text of a chunk that shares an n-gram with the held-out set: those n-grams."""
    hashes = _hashes("".join(norms), n)
    ends = np.cumsum([len(t) for t in norms])
    starts = np.arange(len(hashes))
    owner = np.searchsorted(ends, starts, side="right")
    hit = np.flatnonzero(_found(table, hashes) & (starts + n <= ends[owner]))
    return {int(t): np.unique(hashes[hit[owner[hit] == t]]) for t in np.unique(owner[hit])}


def overlaps(train_texts: Iterable[tuple[str, str]], heldout: Iterable[tuple[str, str]],
             n: int = N) -> list[Overlap]:
    """Each held-out (id, text) that shares an n-character n-gram with a training (id, text), in
    held-out order."""
    if n < 1:
        raise BenchError(f"decontamination n-gram length must be at least 1, got {n}")
    items = [(hid, text, normalise(text)) for hid, text in heldout]
    grams = [_hashes(norm, n) for _, _, norm in items]
    owners: dict[int, list[int]] = {}
    for j, g in enumerate(grams):
        for h in np.unique(g).tolist():
            owners.setdefault(h, []).append(j)
    if not owners:
        return []
    table = np.array(sorted(owners), dtype=np.uint64)
    covered = [np.zeros(len(g), bool) for g in grams]
    best: dict[int, tuple[int, int]] = {}  # item -> (run of n-grams, start) with one training text
    seen: dict[int, dict[str, None]] = {}  # item -> training ids, in order
    for ids, norms in _chunks(train_texts):
        for t, shared in _hits(norms, table, n).items():
            for j in {j for h in shared.tolist() for j in owners[h]}:
                mask = np.isin(grams[j], shared)
                covered[j] |= mask
                run = _longest_run(mask)
                if run[0] > best.get(j, (0, 0))[0]:
                    best[j] = run
                seen.setdefault(j, {})[ids[t]] = None
    out = []
    for j in sorted(seen):
        hid, text, norm = items[j]
        run, start = best[j]
        out.append(Overlap(hid, tuple(list(seen[j])[:SHOWN_IDS]), len(seen[j]),
                           _span(text, norm, start, start + run + n - 1),
                           float(covered[j].mean())))
    return out


def train_texts(rows: Iterable[SFTRow | PreferenceRow]) -> Iterator[tuple[str, str]]:
    """(id, all its text) per training row: every message, and both answers of a pair."""
    for row in rows:
        if isinstance(row, SFTRow):
            yield row.id, "\n".join(m["content"] for m in row.messages)
        else:
            yield row.id, "\n".join([*(m["content"] for m in row.prompt), row.chosen, row.rejected])


def heldout_texts(rows: Iterable[SFTRow | PreferenceRow]) -> Iterator[tuple[str, str]]:
    """(id, question) per held-out row: its user messages (no system prompt, no answer)."""
    for row in rows:
        messages = row.messages if isinstance(row, SFTRow) else row.prompt
        yield row.id, "\n".join(m["content"] for m in messages if m["role"] == "user")


def read_rows(path: str | Path) -> list[SFTRow | PreferenceRow]:
    """The rows of a file in any format bench reads: SFT, preference, or a held-out open-ended
    set (`instruction`/`input` with a `reference` answer)."""
    for read, columns in ((read_sft, None), (read_preference, None),
                          (read_sft, {"response": "reference"})):
        rows, _ = read(path, columns=columns)
        if rows:
            return rows
    raise BenchError(f"{path}: no row reads as SFT, preference or held-out (instruction/input/"
                     "reference) data; see README, training data formats")
