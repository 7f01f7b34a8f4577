"""Checked facts about written domain data: held-out rows share no wording or slot value with the
training files, chosen and rejected overlap in length, and the row counts.

The held-out check reads the training files' text, so it catches a leak however it got there: for
each held-out row the generator records its template ids and slot values; every fixed piece of
those templates (the text between slots and punctuation, 6 characters or more) and every slot
value as the question shows it must be absent from all strings of the training files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.domain.compose import TEMPLATES, half_of

TRAIN_FILES = ("sft_train.jsonl", "pref_train.jsonl", "judge_train.jsonl")
FRAGMENT_MIN = 6
LONGER_BAND = (0.4, 0.6)  # share of held-out pairs whose rejected answer is the longer one
_BREAK = re.compile(r"[，。？！；：、,.?!;:\n（）()“”…—～]")


class DomainCheckError(Exception):
    """A checked fact failed; the message says which and shows examples."""


def fragments(template: str) -> list[str]:
    """The template's fixed text: pieces between slots and punctuation, ≥ FRAGMENT_MIN characters."""
    text = re.sub(r"\{[a-z_0-9]+\}", "\n", template)
    return [p.strip() for p in _BREAK.split(text) if len(p.strip()) >= FRAGMENT_MIN]


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def _strings(value, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)


def training_text(directory: Path) -> str:
    out: list[str] = []
    for name in TRAIN_FILES:
        _strings(read_rows(Path(directory) / name), out)
    return "\n".join(out)


def heldout_leaks(records: dict[str, list], directory: Path) -> dict:
    """Compare the held-out rows' templates and slot values with the training files in directory.
    `records` maps file name → per-row records (category, sub, half, template ids, slots)."""
    text = training_text(directory)
    held = [r for rows in records.values() for r in rows if r.half == "heldout"]
    train = [r for rows in records.values() for r in rows if r.half == "train"]
    held_ids = sorted({t for r in held for t in r.template_ids})
    train_ids = {t for r in train for t in r.template_ids}
    train_texts = {TEMPLATES[t] for t in train_ids}
    wrong_half = sorted(t for t in held_ids if half_of(t) != "heldout")
    q_ids = [t for t in held_ids if t.startswith("q.")]
    a_ids = [t for t in held_ids if not t.startswith("q.")]
    no_fragment = [t for t in held_ids if not fragments(TEMPLATES[t])]

    def leaked(ids):
        frags = sorted({f for t in ids for f in fragments(TEMPLATES[t])})
        return frags, [f for f in frags if f in text]

    q_frags, q_leaks = leaked(q_ids)
    a_frags, a_leaks = leaked(a_ids)
    held_values = sorted({v for r in held for v in r.slots.values()})
    train_values = {v for r in train for v in r.slots.values()}
    shared_values = [v for v in held_values if v in train_values]
    value_leaks = [v for v in held_values if v in text]
    return {
        "heldout_question_templates": len(q_ids),
        "question_templates_shared": sum(t in train_ids or TEMPLATES[t] in train_texts for t in q_ids),
        "question_fragments_checked": len(q_frags),
        "question_fragments_in_training_text": len(q_leaks),
        "heldout_answer_templates": len(a_ids),
        "answer_templates_shared": sum(t in train_ids or TEMPLATES[t] in train_texts for t in a_ids),
        "answer_fragments_checked": len(a_frags),
        "answer_fragments_in_training_text": len(a_leaks),
        "heldout_slot_values": len(held_values),
        "slot_values_shared": len(shared_values),
        "slot_values_in_training_text": len(value_leaks),
        "templates_without_fragments": len(no_fragment),
        "templates_from_training_half": len(wrong_half),
        "examples": (q_leaks + a_leaks + shared_values + value_leaks + no_fragment + wrong_half)[:8],
    }


def leak_count(leaks: dict) -> int:
    return sum(v for k, v in leaks.items()
               if k.endswith(("_shared", "_in_training_text")) or k.startswith("templates_"))


def length_overlap(path: Path, chosen: str = "chosen", rejected: str = "rejected") -> dict:
    rows = read_rows(path)
    c = [len(r[chosen]) for r in rows]
    r = [len(r[rejected]) for r in rows]
    return {
        "pairs": len(rows),
        "chosen_chars": {"mean": round(sum(c) / len(c), 1), "min": min(c), "max": max(c)},
        "rejected_chars": {"mean": round(sum(r) / len(r), 1), "min": min(r), "max": max(r)},
        "rejected_longer_share": round(sum(b > a for a, b in zip(c, r)) / len(rows), 3),
    }


def row_counts(files: dict[str, list[dict]], records: dict[str, list], directory: Path) -> dict:
    """Rows per file and per category, counted from the written files (each row must be the row
    the generator made, so its category is known)."""
    counts = {}
    for name, rows in files.items():
        written = read_rows(Path(directory) / name)
        if written != rows:
            raise DomainCheckError(f"{directory}/{name}: the written rows differ from the generated ones")
        by_cat: dict[str, int] = {}
        for rec in records[name]:
            by_cat[rec.category] = by_cat.get(rec.category, 0) + 1
        counts[name] = {"rows": len(written), "by_category": by_cat}
    return counts


def check_facts(files: dict[str, list[dict]], records: dict[str, list], directory: Path,
                seed: int) -> dict:
    """All facts, computed from the files in directory; raises DomainCheckError when one fails."""
    leaks = heldout_leaks(records, directory)
    facts = {
        "seed": seed,
        "rows": row_counts(files, records, directory),
        "heldout_vs_training": leaks,
        "length_overlap": {name: length_overlap(Path(directory) / name, *keys) for name, keys in
                           (("heldout_pairs.jsonl", ()), ("pref_train.jsonl", ()))},
    }
    if leak_count(leaks):
        raise DomainCheckError(
            "held-out rows share wording or slot values with the training files; reword the held-out "
            "template or pick another held-out value in bench/domain/templates.py, answers.py or "
            f"poor.py. Examples: {leaks['examples']}; counts: "
            f"{json.dumps({k: v for k, v in leaks.items() if k != 'examples'})}")
    share = facts["length_overlap"]["heldout_pairs.jsonl"]["rejected_longer_share"]
    if not LONGER_BAND[0] <= share <= LONGER_BAND[1]:
        raise DomainCheckError(f"heldout_pairs: rejected is longer in {share:.0%} of pairs, outside "
                               f"{LONGER_BAND[0]:.0%}–{LONGER_BAND[1]:.0%}")
    return facts


def facts_table(facts: dict) -> str:
    lines = ["file                    rows  " + "  ".join(f"{c:>7}" for c in _cats(facts))]
    for name, c in facts["rows"].items():
        lines.append(f"{name:<22} {c['rows']:>5}  " +
                     "  ".join(f"{c['by_category'].get(k, 0):>7}" for k in _cats(facts)))
    leaks = facts["heldout_vs_training"]
    lines.append("held-out vs training: " + ", ".join(f"{k}={v}" for k, v in leaks.items()
                                                      if k != "examples"))
    for name, o in facts["length_overlap"].items():
        lines.append(f"{name}: chosen {o['chosen_chars']['mean']} chars "
                     f"[{o['chosen_chars']['min']}–{o['chosen_chars']['max']}], rejected "
                     f"{o['rejected_chars']['mean']} [{o['rejected_chars']['min']}–"
                     f"{o['rejected_chars']['max']}], rejected longer in "
                     f"{o['rejected_longer_share']:.1%}")
    return "\n".join(lines)


def _cats(facts: dict) -> list[str]:
    return list(next(iter(facts["rows"].values()))["by_category"])
