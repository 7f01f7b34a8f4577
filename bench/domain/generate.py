"""Write the kids-clothing customer-service demo data, seeded and byte-for-byte reproducible.

    python -m bench.domain.generate [--seed 0] [--out bench/domain/data]

Files (LLaMA-Factory formats, registered in dataset_info.json): sft_train.jsonl (alpaca),
pref_train.jsonl (ranking), judge_train.jsonl (alpaca: judging prompt → JSON verdict),
judge_chat_train.jsonl (OpenAI messages: the judge scorer's own request → its verdict format, for
the demo judge; bench/domain/judge_rows.py), heldout_open.jsonl (question + reference), heldout_pairs.jsonl (TRL prompt/chosen/rejected), and
facts.json: the checks of bench/domain/check.py, computed from the written files. The files are
written to a temporary folder, checked, and only then moved into --out; a failed check exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.domain import DATA_DIR
from bench.domain import answers as A
from bench.domain import templates as T
from bench.domain.check import DomainCheckError, check_facts, facts_table
from bench.domain.compose import Answer, Question, draw_question, good_answer, poor_answer, verdict_text
from bench.domain.judge_rows import chat_row

# file → (template half, rows per category, row kind)
PLAN = {
    "sft_train.jsonl": ("train", 60, "sft"),
    "pref_train.jsonl": ("train", 60, "pref"),
    "judge_train.jsonl": ("train", 60, "judge"),
    "judge_chat_train.jsonl": ("train", 60, "judge_chat"),
    "heldout_open.jsonl": ("heldout", 30, "open"),
    "heldout_pairs.jsonl": ("heldout", 30, "pairs"),
}
DATASET_INFO = {
    "kids_sft": {"file_name": "sft_train.jsonl",
                 "columns": {"prompt": "instruction", "query": "input", "response": "output",
                             "system": "system"}},
    "kids_pref": {"file_name": "pref_train.jsonl", "ranking": True,
                  "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen",
                              "rejected": "rejected"}},
    "kids_judge": {"file_name": "judge_train.jsonl",
                   "columns": {"prompt": "instruction", "query": "input", "response": "output"}},
    "kids_judge_chat": {"file_name": "judge_chat_train.jsonl", "formatting": "sharegpt",
                        "columns": {"messages": "messages"},
                        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                 "assistant_tag": "assistant", "system_tag": "system"}},
}
FORMS = ("short", "long")


@dataclass
class Record:
    """What the generator knows about one written row (never written into the row itself)."""
    category: str
    sub: str
    half: str
    template_ids: list[str]
    slots: dict[str, str]


@dataclass
class Built:
    seed: int
    files: dict[str, list[dict]]
    records: dict[str, list[Record]]


def file_seed(seed: int, name: str) -> int:
    """An integer seed per file, the same on every machine (no str hash())."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "big")


def _pair(rng: random.Random, q: Question, rejected_longer: bool) -> tuple[Answer, Answer]:
    """A good and a poor answer whose lengths stand as asked (so length alone cannot tell them)."""
    for _ in range(500):
        good = good_answer(rng, q, rng.choice(FORMS))
        poor = poor_answer(rng, q, "long" if rejected_longer else rng.choice(FORMS))
        if (len(poor.text) > len(good.text)) == rejected_longer:
            return good, poor
    raise DomainCheckError(f"no answer pair with rejected {'longer' if rejected_longer else 'shorter'} "
                           f"for {q.template_id}; lengthen the poor or shorten the good templates")


def make_row(rng: random.Random, kind: str, q: Question, k: int) -> tuple[dict, list[Answer]]:
    """One row of the given kind; k counts this category's rows so far (alternates targets)."""
    if kind == "sft":
        a = good_answer(rng, q, rng.choice(FORMS))
        return {"instruction": q.text, "input": "", "output": a.text, "system": T.SYSTEM}, [a]
    if kind == "open":
        a = good_answer(rng, q, rng.choice(FORMS))
        return {"instruction": q.text, "input": "", "reference": a.text}, [a]
    if kind == "judge":
        form = rng.choice(FORMS)
        a = good_answer(rng, q, form) if k % 2 == 0 else poor_answer(rng, q, form)
        prompt = A.JUDGE_PROMPT.format(question=q.text, answer=a.text)
        return {"instruction": prompt, "input": "", "output": verdict_text(a.flags)}, [a]
    if kind == "judge_chat":
        a = good_answer(rng, q, rng.choice(FORMS)) if k % 2 == 0 else poor_answer(rng, q, rng.choice(FORMS))
        return chat_row(q.text, a), [a]
    good, poor = _pair(rng, q, rejected_longer=k % 2 == 0)
    if kind == "pref":
        return {"instruction": q.text, "input": "", "chosen": good.text, "rejected": poor.text}, [good, poor]
    return {"prompt": q.text, "chosen": good.text, "rejected": poor.text}, [good, poor]


def build(seed: int = 0) -> Built:
    files: dict[str, list[dict]] = {}
    records: dict[str, list[Record]] = {}
    for name, (half, per_category, kind) in PLAN.items():
        rng = random.Random(file_seed(seed, name))
        rows, recs, seen = [], [], set()
        counts = dict.fromkeys(T.CATEGORIES, 0)
        for _ in range(per_category):
            for cat in T.CATEGORIES:
                for _attempt in range(2000):
                    q = draw_question(rng, cat, half)
                    if q.text not in seen:
                        break
                else:
                    raise DomainCheckError(f"{name}: too few distinct {cat} questions in the {half} half")
                seen.add(q.text)
                row, answers = make_row(rng, kind, q, counts[cat])
                counts[cat] += 1
                ids = [q.template_id] + [t for a in answers for t in a.template_ids]
                rows.append(row)
                recs.append(Record(cat, q.sub, half, ids, q.slots))
        files[name], records[name] = rows, recs
    return Built(seed, files, records)


def _dump(value, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def write_files(built: Built, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in built.files.items():
        (directory / name).write_bytes("".join(_dump(r) + "\n" for r in rows).encode("utf-8"))
    (directory / "dataset_info.json").write_bytes((_dump(DATASET_INFO, 2) + "\n").encode("utf-8"))


def generate(seed: int = 0, out: Path = DATA_DIR) -> dict:
    """Build, write into a temporary folder, check, then move into `out`. Returns the facts."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    built = build(seed)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".domain-") as tmp:
        tmp_dir = Path(tmp)
        write_files(built, tmp_dir)
        facts = check_facts(built.files, built.records, tmp_dir, seed)
        (tmp_dir / "facts.json").write_bytes((_dump(facts, 2) + "\n").encode("utf-8"))
        for path in sorted(tmp_dir.iterdir()):
            os.replace(path, out / path.name)
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.domain.generate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DATA_DIR, help=f"output folder (default {DATA_DIR})")
    args = parser.parse_args(argv)
    try:
        facts = generate(args.seed, args.out)
    except DomainCheckError as exc:
        print(f"domain data not written: {exc}", file=sys.stderr)
        return 1
    print(facts_table(facts))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
