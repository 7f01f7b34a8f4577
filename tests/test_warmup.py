"""The multiple-choice warm-up rows (bench/domain/warmup.py): seeded and committed as written,
readable SFT rows in the layout of OpenCompass's FewCLUE `_gen` prompts, answered by one listed
letter, letters spread over A-D, and no held-out question (or bundled FewCLUE demo text) in them.
No model is trained here."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from bench.domain import DATA_DIR
from bench.domain.warmup import LETTERS, OUT, build, choose_line, dumps, main
from bench.train.config import load_train_config
from bench.train.data import read_sft
from bench.train.decontam import heldout_texts, overlaps, read_rows, train_texts

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "bench" / "domain" / "kids-warmup.yaml"
OPTION = re.compile(r"^([A-D])\. (\S.*)$")


@pytest.fixture(scope="module")
def rows():
    return build(0)


def _parts(prompt: str) -> tuple[list[str], list[str], str, str]:
    """(question lines, option letters, the choose line, the last line) of a prompt."""
    lines = prompt.split("\n")
    first = next(i for i, line in enumerate(lines) if OPTION.match(line))
    letters = []
    for line in lines[first:]:
        match = OPTION.match(line)
        if not match:
            break
        letters.append(match.group(1))
    rest = lines[first + len(letters):]
    assert len(rest) == 2, prompt
    return lines[:first], letters, rest[0], rest[1]


def test_the_generator_is_deterministic_and_the_committed_file_is_its_output(rows, tmp_path):
    assert build(0) == rows
    assert build(1) != rows
    assert OUT == DATA_DIR / "warmup_train.jsonl"
    assert OUT.read_bytes() == dumps(rows), (
        "bench/domain/data/warmup_train.jsonl is not what the generator writes: "
        "run `python -m bench.domain.warmup`")
    assert main(["--out", str(tmp_path / "w.jsonl")]) == 0
    assert (tmp_path / "w.jsonl").read_bytes() == OUT.read_bytes()


def test_rows_read_as_sft_with_no_bad_row(rows):
    read, log = read_sft(OUT)
    assert 300 <= len(read) <= 600 and len(read) == len(rows)
    assert log.kept == len(rows)
    for row, raw in zip(read, rows, strict=True):
        assert [m["role"] for m in row.messages] == ["user", "assistant"]
        assert list(row.messages) == raw["messages"]
    assert len({r["messages"][0]["content"] for r in rows}) == len(rows)  # no prompt twice


def test_every_prompt_has_the_gen_layout_and_a_listed_letter_as_its_answer(rows):
    for row in rows:
        prompt, answer = row["messages"][0]["content"], row["messages"][1]["content"]
        question, letters, choose, last = _parts(prompt)
        assert question and all(line.strip() for line in question), prompt
        assert letters == list(LETTERS[:len(letters)]) and 2 <= len(letters) <= 4, prompt
        assert choose in (choose_line("".join(letters), True), choose_line("".join(letters), False))
        assert re.fullmatch(r"请从([”“][A-D][”“]，)*[”“][A-D][”“]中进行选择。", choose)
        assert last == "答："
        assert len(answer) == 1 and answer in letters, (prompt, answer)


def test_choose_line_matches_the_fewclue_templates():
    from bench.tasks.fewclue import BUSTM, CLUEWSC, OCNLI_FC

    assert choose_line("AB", True) in BUSTM.gen_template[0][1]
    assert choose_line("ABC", True) in OCNLI_FC.gen_template[0][1]
    assert choose_line("AB", False) in CLUEWSC.gen_template[0][1]


def test_answer_letters_are_roughly_balanced(rows):
    counts = Counter(r["messages"][1]["content"] for r in rows)
    assert set(counts) == set(LETTERS)
    for letter in LETTERS:
        assert 0.15 <= counts[letter] / len(rows) <= 0.35, counts
    by_options = Counter((len(_parts(r["messages"][0]["content"])[1]), r["messages"][1]["content"])
                         for r in rows)
    for n in (2, 3, 4):  # within each option count, every letter is some row's answer
        assert all(by_options[(n, x)] > 0 for x in LETTERS[:n]), by_options


def test_no_held_out_question_overlaps_the_rows():
    train = list(train_texts(read_rows(OUT)))
    for name in ("heldout_open.jsonl", "heldout_pairs.jsonl"):
        held = list(heldout_texts(read_rows(DATA_DIR / name)))
        assert len(held) == 150
        assert overlaps(train, held) == [], name


def test_no_bundled_fewclue_demo_text_is_in_the_rows():
    from bench.files import iter_jsonl
    from bench.tasks.loaders import DEMO_DATA_DIR

    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    items = []
    for path in sorted(DEMO_DATA_DIR.rglob("*.json")):
        for i, record in iter_jsonl(path):
            items.append((f"{path.parent.name}/{path.name}:{i}", "\n".join(strings(record))))
    assert len(items) > 100
    assert overlaps(list(train_texts(read_rows(OUT))), items, n=10) == []


def test_the_training_config_trains_tiny_b_on_the_rows_checking_the_held_out_sets():
    cfg = load_train_config(CONFIG)
    sft = load_train_config(ROOT / "bench" / "domain" / "kids-sft.yaml")
    assert (cfg.method, cfg.base, cfg.output, cfg.finetuning, cfg.quantization) == (
        "sft", "tiny-b", "tiny-b-warm", "full", "none")
    assert [(CONFIG.parent / d.path).resolve() for d in cfg.data] == [OUT.resolve()]
    assert cfg.held_out == sft.held_out
    assert all((CONFIG.parent / p).is_file() for p in cfg.held_out)
