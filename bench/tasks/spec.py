"""TaskSpec: one FewCLUE/CLUE task declared as data, and `build_task` turning it into a Task.

A spec holds what OpenCompass spreads over a config file and a dataset loader: the data files per
split, the gold label values, the gen template, one ppl template per label (in OpenCompass's key
order), and `prepare_*` functions that build the same field dict the OpenCompass loader builds for
each record (e.g. chid `#idiom#` → `______`, csl keywords joined with `，`).

Prompts are filled the way OpenCompass 0.5.4 fills them (`utils/prompt.py: safe_format`): for each
field in the loader's column order, replace every `{name}` with `str(value)`; unknown `{x}` stays.
In gen mode the output column is blanked first (`PromptTemplate.generate_item`).

Candidate order: gen mode lists labels in `spec.labels` order (letter i = `letters[i]`); ppl mode
follows the OpenCompass template dict's key order, so that ties (first minimum wins) break the same
way. `Sample.letters[i]` is always the answer letter of candidate i.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

from bench.errors import BenchError, suggest
from bench.files import MAX_ROW_BYTES, iter_jsonl, read_json
from bench.rows import RowLog
from bench.tasks.base import Message, Mode, Prompt, Role, Sample, Task
from bench.tasks.loaders import file_sha256

Turn = tuple[Role, str]
# a str template is a bare string prompt in OpenCompass (no roles); a tuple is a PromptList "round"
Template = Union[str, tuple[Turn, ...]]
Fields = dict[str, object]


def letters_az(n: int) -> tuple[str, ...]:
    return tuple(chr(ord("A") + i) for i in range(n))


@dataclass(frozen=True)
class TaskSpec:
    """One task, declared. Functions take a raw record (a dict as read from the file)."""

    name: str
    files: Mapping[str, tuple[str, ...]]  # split → data files, relative to the data dir
    labels: tuple[str, ...]  # gold values (as str), in gen option order
    gen_template: Template
    ppl_templates: Mapping[str, Template]  # label → full sequence; OpenCompass's key order
    gold: Callable[[dict], object]  # raw record → gold value (compared as str with labels)
    prepare_gen: Callable[[dict], Fields]  # the OpenCompass gen loader's row, output column ""
    prepare_ppl: Callable[[dict], Fields]  # the OpenCompass ppl loader's row
    letters: tuple[str, ...] = ()  # answer letters; default A, B, C, ...
    postprocess: str = "first_capital"
    metric: str = "accuracy"
    version: str = "1"
    reader: Literal["jsonl", "c3"] = "jsonl"
    skip: Callable[[dict], bool] | None = None  # records the OpenCompass loader drops
    skip_reason: str = "dropped as the OpenCompass loader does"
    source: str = ""  # the OpenCompass configs reproduced, or "bench-defined"

    def __post_init__(self) -> None:
        if not self.letters:
            object.__setattr__(self, "letters", letters_az(len(self.labels)))
        assert len(self.letters) == len(self.labels), self.name
        assert set(self.ppl_templates) == set(self.labels), self.name

    def candidates(self, mode: Mode) -> tuple[str, ...]:
        """Label values in candidate order for one mode."""
        return self.labels if mode == "gen" else tuple(self.ppl_templates)

    def letter(self, label: str) -> str:
        return self.letters[self.labels.index(label)]

    @property
    def fingerprint(self) -> str:
        """sha256 over templates, labels, letters, post-processor, metric and loader version."""
        payload = {
            "name": self.name, "labels": self.labels, "letters": self.letters,
            "gen": self.gen_template, "ppl": [[k, v] for k, v in self.ppl_templates.items()],
            "postprocess": self.postprocess, "metric": self.metric, "version": self.version,
            "reader": self.reader,
        }
        raw = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


# ---- filling templates exactly like OpenCompass ---------------------------------------------


def fill(text: str, fields: Mapping[str, object]) -> str:
    """OpenCompass `safe_format`: sequential `{k}` → str(v) replacement in field order."""
    for key, value in fields.items():
        text = text.replace(f"{{{key}}}", str(value))
    return text


def render_oc(template: Template, fields: Mapping[str, object]) -> str | list[dict]:
    """What OpenCompass hands the model: a str, or the PromptList as [{role, prompt}]."""
    if isinstance(template, str):
        return fill(template, fields)
    return [{"role": role, "prompt": fill(text, fields)} for role, text in template]


def to_prompt(rendered: str | list[dict]) -> Prompt:
    """bench's Prompt for an OpenCompass rendering: a bare str becomes one HUMAN message."""
    if isinstance(rendered, str):
        return (Message("HUMAN", rendered),)
    return tuple(Message(m["role"], m["prompt"]) for m in rendered)


def oc_form(template: Template, prompt: Prompt) -> str | list[dict]:
    """Inverse of `to_prompt` given the template it came from (for parity checks)."""
    if isinstance(template, str):
        assert len(prompt) == 1
        return prompt[0].prompt
    return [{"role": m.role, "prompt": m.prompt} for m in prompt]


# ---- reading records --------------------------------------------------------------------------


def iter_c3(path: Path, rows: RowLog) -> Iterator[tuple[str, str, dict]]:
    """C3 files are one JSON array of [paragraphs, questions, doc id]: one record per question."""
    data = read_json(path)
    if not isinstance(data, list):
        raise BenchError(f"{path}: expected a JSON array of C3 documents")
    for d, doc in enumerate(data):
        if not (isinstance(doc, list) and len(doc) >= 2 and isinstance(doc[1], list)):
            rows.bad(f"{path}: document {d}", "expected [paragraphs, questions, id]")
            continue
        for q, question in enumerate(doc[1]):
            where = f"{path}: document {d} question {q}"
            if not isinstance(question, dict):
                rows.bad(where, "expected an object")
                continue
            record = {"context": doc[0], **question, "doc_id": doc[2] if len(doc) > 2 else None}
            yield f"{path.stem}#{d}.{q}", where, record


def iter_records(spec: TaskSpec, paths: list[Path], rows: RowLog, max_row_bytes: int
                 ) -> Iterator[tuple[str, str, dict]]:
    """(sample id, location for messages, raw record) over a split's files, in file order; bad
    rows go to `rows`."""
    for path in paths:
        if spec.reader == "c3":
            yield from iter_c3(path, rows)
            continue
        prefix = f"{path.stem}:" if len(paths) > 1 else ""
        for lineno, record in iter_jsonl(path, rows, max_row_bytes):
            yield f"{prefix}L{lineno}", f"{path}:{lineno}", record


# ---- building a Task --------------------------------------------------------------------------


def data_digest(paths: list[Path]) -> str:
    if len(paths) == 1:
        return file_sha256(paths[0])
    joined = "\n".join(f"{p.name} {file_sha256(p)}" for p in paths)
    return hashlib.sha256(joined.encode()).hexdigest()


def split_paths(spec: TaskSpec, data_dir: Path, split: str) -> list[Path]:
    if split not in spec.files:
        raise BenchError(f"task '{spec.name}' has no split '{split}'{suggest(split, spec.files)}")
    paths = [Path(data_dir) / rel for rel in spec.files[split]]
    for path in paths:
        if not path.is_file():
            hint = ("fetch the FewCLUE files with `python -m bench.tasks.download` and point "
                    "--data-dir / BENCH_DATA_DIR at the folder it prints"
                    if "fewclue" in path.parts else
                    "put the CLUE file there (see the data README) or drop the task from the suite")
            raise BenchError(f"task '{spec.name}' ({split}): data file '{path}' not found; {hint}")
    return paths


class BadRow(Exception):
    """One record the task cannot use; the reason goes to the row log."""


_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@functools.cache
def _placeholders(template: Template) -> frozenset[str]:
    texts = [template] if isinstance(template, str) else [text for _, text in template]
    return frozenset(name for text in texts for name in _FIELD.findall(text))


def _gold_label(spec: TaskSpec, record: dict) -> str:
    try:
        label = str(spec.gold(record))
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise BadRow(f"no usable gold label ({type(exc).__name__}: {exc}); "
                     f"allowed labels: {', '.join(spec.labels)}") from None
    if label not in spec.labels:
        raise BadRow(f"gold label '{label}' is not one of the allowed labels: {', '.join(spec.labels)}")
    return label


def _fields(prepare: Callable[[dict], Fields], record: dict, templates: list[Template]) -> Fields:
    """The loader's row, refusing one that leaves a `{field}` of the prompt unfilled (OpenCompass
    would score the literal placeholder) or fills it with null."""
    try:
        fields = prepare(record)
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise BadRow(f"record lacks what the prompt needs ({type(exc).__name__}: {exc})") from None
    needed = set().union(*map(_placeholders, templates))
    missing = sorted(n for n in needed if n not in fields)
    if missing:
        raise BadRow(f"missing field {', '.join(repr(m) for m in missing)}")
    null = sorted(n for n in needed if fields[n] is None)
    if null:
        raise BadRow(f"field {', '.join(repr(m) for m in null)} is null")
    return fields


def _render(spec: TaskSpec, mode: Mode, record: dict) -> tuple[Prompt, tuple[Prompt, ...]]:
    if mode == "gen":
        fields = _fields(spec.prepare_gen, record, [spec.gen_template])
        return to_prompt(render_oc(spec.gen_template, fields)), ()
    fields = _fields(spec.prepare_ppl, record, list(spec.ppl_templates.values()))
    cands = tuple(to_prompt(render_oc(spec.ppl_templates[lb], fields)) for lb in spec.candidates("ppl"))
    first = cands[0]
    shown = first[:-1] if len(first) > 1 and first[-1].role == "BOT" else first
    return shown, cands


def build_task(spec: TaskSpec, data_dir: Path, split: str, mode: Mode, limit: int | None = None,
               max_row_bytes: int = MAX_ROW_BYTES) -> Task:
    """Load one split of a task in one mode. Sample ids are "L<line>" (C3: "<file>#<doc>.<q>").
    Bad records are skipped and counted in `task.rows` (bench/rows.py); the caller applies the
    policy. In ppl mode `gen_prompt` is only for display: the first candidate without its answer.
    """
    if mode not in ("gen", "ppl"):
        raise BenchError(f"unknown mode '{mode}'{suggest(str(mode), ['gen', 'ppl'])}")
    paths = split_paths(spec, data_dir, split)
    order = spec.candidates(mode)
    letters = tuple(spec.letter(lb) for lb in order)
    rows = RowLog(", ".join(str(p) for p in paths))
    samples: list[Sample] = []
    for sid, where, record in iter_records(spec, paths, rows, max_row_bytes):
        if spec.skip is not None and spec.skip(record):
            rows.drop(spec.skip_reason)
            continue
        try:
            label = _gold_label(spec, record)
            gen_prompt, ppl_prompts = _render(spec, mode, record)
        except BadRow as exc:
            rows.bad(where, f"task '{spec.name}': {exc}")
            continue
        rows.kept += 1
        samples.append(Sample(
            id=sid, doc=record, target=order.index(label), gen_prompt=gen_prompt,
            ppl_prompts=ppl_prompts, letters=letters,
        ))
        if limit is not None and len(samples) >= limit:
            break
    return Task(
        name=spec.name, split=split, mode=mode, samples=samples,
        spec_fingerprint=spec.fingerprint, data_sha256=data_digest(paths), metric=spec.metric,
        meta={
            "postprocess": spec.postprocess,
            "labels": list(order), "letters": list(letters), "files": list(spec.files[split]),
            "version": spec.version, "source": spec.source,
        },
        rows=rows,
    )
