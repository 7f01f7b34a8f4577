"""The kids-clothing demo domain: a seeded generator whose output is the committed data, held-out
rows that share no wording or slot value with training, the checked facts, and the demo corpus."""

from __future__ import annotations

import json
import shutil

import pytest

from bench.domain import DATA_DIR
from bench.domain import templates as T
from bench.domain.check import LONGER_BAND, TRAIN_FILES, heldout_leaks, leak_count, length_overlap, read_rows
from bench.domain.generate import DATASET_INFO, PLAN, build, generate, main

FILES = [*PLAN, "dataset_info.json", "facts.json"]
KEYS = {
    "sft_train.jsonl": ["instruction", "input", "output", "system"],
    "pref_train.jsonl": ["instruction", "input", "chosen", "rejected"],
    "judge_train.jsonl": ["instruction", "input", "output"],
    "heldout_open.jsonl": ["instruction", "input", "reference"],
    "heldout_pairs.jsonl": ["prompt", "chosen", "rejected"],
}
ROWS = {"sft_train.jsonl": 300, "pref_train.jsonl": 300, "judge_train.jsonl": 300,
        "heldout_open.jsonl": 150, "heldout_pairs.jsonl": 150}
SCORES = ["child_friendly", "safety", "accuracy", "service", "compliance"]


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    """Seed 0 written twice: once through generate(), once through the command line."""
    a, b = tmp_path_factory.mktemp("gen_a"), tmp_path_factory.mktemp("gen_b")
    generate(0, a)
    assert main(["--seed", "0", "--out", str(b)]) == 0
    return a, b


@pytest.fixture(scope="module")
def built():
    return build(0)


# ---- determinism ----------------------------------------------------------------------------

def test_same_seed_gives_the_same_bytes_as_the_committed_data(twice):
    a, b = twice
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
        assert (a / name).read_bytes() == (DATA_DIR / name).read_bytes(), (
            f"bench/domain/data/{name} is not what the generator writes: "
            "run `python -m bench.domain.generate`")
    # warmup_train.jsonl is bench.domain.warmup's (tests/test_warmup.py)
    assert sorted(p.name for p in DATA_DIR.iterdir()) == sorted([*FILES, "warmup_train.jsonl"])


def test_another_seed_gives_other_content(tmp_path, twice):
    generate(1, tmp_path)
    for name in PLAN:
        assert (tmp_path / name).read_bytes() != (twice[0] / name).read_bytes(), name
    assert json.loads((tmp_path / "facts.json").read_text(encoding="utf-8"))["seed"] == 1


# ---- held-out vs training -------------------------------------------------------------------

def test_heldout_rows_share_no_template_or_slot_value_with_training(built):
    leaks = heldout_leaks(built.records, DATA_DIR)
    assert leak_count(leaks) == 0, leaks["examples"]
    assert leaks["question_templates_shared"] == 0 and leaks["slot_values_shared"] == 0
    assert leaks["question_fragments_in_training_text"] == 0
    assert leaks["slot_values_in_training_text"] == 0
    assert leaks["answer_fragments_in_training_text"] == 0
    # every held-out question wording is used, and the check had something to look for
    assert leaks["heldout_question_templates"] == sum(len(q["heldout"]) for q in T.QUESTIONS.values())
    assert leaks["question_fragments_checked"] >= leaks["heldout_question_templates"]
    assert leaks["heldout_slot_values"] > 40
    facts = json.loads((DATA_DIR / "facts.json").read_text(encoding="utf-8"))
    assert facts["heldout_vs_training"] == leaks


def test_a_heldout_question_copied_into_training_is_reported(built, tmp_path):
    for name in TRAIN_FILES:
        shutil.copy(DATA_DIR / name, tmp_path / name)
    question = read_rows(DATA_DIR / "heldout_open.jsonl")[0]["instruction"]
    row = {"instruction": question, "input": "", "output": "好的。", "system": T.SYSTEM}
    with (tmp_path / "sft_train.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    leaks = heldout_leaks(built.records, tmp_path)
    assert leaks["question_fragments_in_training_text"] > 0
    assert leaks["slot_values_in_training_text"] > 0
    assert leak_count(leaks) > 0
    assert any(fragment in question for fragment in leaks["examples"])


def test_generator_refuses_to_write_leaky_data(tmp_path, monkeypatch, capsys):
    # a held-out brand in the training pool: the check fails and nothing is written
    monkeypatch.setitem(T.BRANDS, "train", list(T.BRANDS["heldout"]))
    assert main(["--out", str(tmp_path / "out")]) == 1
    assert "slot_values_shared" in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []


# ---- lengths, counts, row shapes ------------------------------------------------------------

@pytest.mark.parametrize("name", ["heldout_pairs.jsonl", "pref_train.jsonl"])
def test_chosen_and_rejected_overlap_in_length(name):
    o = length_overlap(DATA_DIR / name)
    assert LONGER_BAND[0] <= o["rejected_longer_share"] <= LONGER_BAND[1]
    assert o["rejected_chars"]["max"] > o["chosen_chars"]["min"]
    assert o["rejected_chars"]["min"] < o["chosen_chars"]["max"]
    assert json.loads((DATA_DIR / "facts.json").read_text(encoding="utf-8"))["length_overlap"][name] == o


def test_row_counts_per_file_and_category():
    facts = json.loads((DATA_DIR / "facts.json").read_text(encoding="utf-8"))
    for name, n in ROWS.items():
        assert len(read_rows(DATA_DIR / name)) == n
        assert facts["rows"][name]["rows"] == n
        assert facts["rows"][name]["by_category"] == dict.fromkeys(T.CATEGORIES, n // len(T.CATEGORIES))


@pytest.mark.parametrize("name", list(KEYS))
def test_rows_are_json_objects_of_non_empty_strings(name):
    data = (DATA_DIR / name).read_bytes()
    assert b"\r" not in data and data.endswith(b"\n")
    rows = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    for row in rows:
        assert list(row) == KEYS[name]
        for key, value in row.items():
            assert isinstance(value, str)
            assert value == "" if key == "input" else value.strip(), (name, key)
        if "chosen" in row:
            assert row["chosen"] != row["rejected"]
        if "system" in row:
            assert row["system"] == T.SYSTEM
    prompts = [row.get("instruction", row.get("prompt")) for row in rows]
    assert len(set(prompts)) == len(prompts)


def test_judge_outputs_are_consistent_verdicts(built):
    rows = read_rows(DATA_DIR / "judge_train.jsonl")
    for row, record in zip(rows, built.records["judge_train.jsonl"]):
        verdict = json.loads(row["output"])
        assert list(verdict) == ["scores", "is_good", "reason"]
        assert list(verdict["scores"]) == SCORES
        assert all(type(s) is int and 1 <= s <= 10 for s in verdict["scores"].values())
        assert isinstance(verdict["is_good"], bool) and verdict["reason"]
        # the answer judged is the good or the poor one the generator made
        assert verdict["is_good"] == (not record.template_ids[1].startswith("poor."))
        for dim in ("儿童友好性", "安全合规性", "专业准确性", "服务完整性", "禁词合规"):
            assert dim in row["instruction"]
    assert {json.loads(r["output"])["is_good"] for r in rows} == {True, False}


def test_answers_only_use_slots_the_question_gave(built):
    from bench.domain.compose import TEMPLATES, fields

    slot_names = {"age", "height", "weight", "weight2", "season", "temp", "brand", "fit", "peer",
                  "dest", "character", "colour"}  # garment falls back to 衣服 when not asked about
    for name, records in built.records.items():
        for record in records:
            for tid in record.template_ids[1:]:
                assert set(fields(TEMPLATES[tid])) & slot_names <= set(record.slots), (name, tid)


def test_dataset_info_registers_the_training_files():
    info = json.loads((DATA_DIR / "dataset_info.json").read_text(encoding="utf-8"))
    assert info == DATASET_INFO
    assert info["kids_pref"]["ranking"] is True
    for entry in info.values():
        assert (DATA_DIR / entry["file_name"]).is_file()


# ---- the demo's tokenizer corpus -------------------------------------------------------------

def test_demo_corpus_holds_the_training_text_not_the_held_out_sets():
    from bench.demo import demo_corpus

    corpus = set(demo_corpus())
    for name in ("sft_train.jsonl", "pref_train.jsonl", "judge_train.jsonl"):
        row = read_rows(DATA_DIR / name)[0]
        assert all(value in corpus for value in row.values() if value), name
    for name in ("heldout_pairs.jsonl", "heldout_open.jsonl"):
        assert not any(value in corpus for row in read_rows(DATA_DIR / name)
                       for key, value in row.items() if key != "input"), name


def test_demo_models_are_rebuilt_when_the_corpus_changes(tmp_path, monkeypatch):
    import bench.backends.tiny
    import bench.demo

    builds = []

    def fake_build(out, *, corpus, **kwargs):
        out.mkdir(parents=True, exist_ok=True)
        builds.append((out.name, tuple(corpus)))
        return out

    monkeypatch.setattr(bench.backends.tiny, "build_tiny_model", fake_build)
    monkeypatch.setattr(bench.demo, "demo_corpus", lambda: ["宝宝两岁", "尺码"])
    bench.demo.ensure_demo_models(tmp_path)
    assert sorted(name for name, _ in builds) == sorted(bench.demo.CANDIDATES)
    bench.demo.ensure_demo_models(tmp_path)
    assert len(builds) == 2  # same corpus: the cached models are kept
    monkeypatch.setattr(bench.demo, "demo_corpus", lambda: ["宝宝两岁", "尺码", "A类"])
    bench.demo.ensure_demo_models(tmp_path)
    assert len(builds) == 4 and builds[-1][1] == ("宝宝两岁", "尺码", "A类")
    # a stamp from before the corpus digest (build arguments only) is stale too
    for name, kwargs in bench.demo.CANDIDATES.items():
        (tmp_path / name / "bench_tiny.json").write_text(json.dumps(kwargs))
    bench.demo.ensure_demo_models(tmp_path)
    assert len(builds) == 6
