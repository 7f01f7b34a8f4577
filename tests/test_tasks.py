"""FewCLUE/CLUE tasks: real-data loading, file quirks, OpenCompass prompt parity, demo data,
task-name errors, the pinned downloader."""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from bench.backends.base import oc_base_text
from bench.errors import BenchError
from bench.tasks import (
    CLUE_TASKS,
    FEWCLUE_TASKS,
    TASKS,
    download,
    get_spec,
    load_task,
    postprocess,
)
from bench.tasks.loaders import DEMO_DATA_DIR, file_sha256
from bench.tasks.spec import oc_form
from tests.helpers import require_shared_data as require_data
from tests.helpers import shared_data_dir

DATA = shared_data_dir()
FIXTURES = Path(__file__).parent / "fixtures" / "oc_prompts"

DEV_COUNTS = {"eprstmt": 160, "csldcp": 2068, "tnews": 1098, "iflytek": 1373, "ocnli_fc": 160,
              "bustm": 160, "chid": 202, "csl": 160, "cluewsc": 159,
              "afqmc": 4316, "ocnli": 2950, "c3": 3816}  # ocnli: 3000 minus 50 "-" labels
TEST_COUNTS = {"eprstmt": 610, "csldcp": 1784, "tnews": 2010, "iflytek": 1749, "ocnli_fc": 2520,
               "bustm": 1772, "chid": 2002, "csl": 2838, "cluewsc": 976, "c3": 3892}
# distinct gold labels per split where a split does not cover the whole label set
PARTIAL_LABELS = {("csldcp", "test"): 66, ("iflytek", "dev"): 117, ("iflytek", "test"): 98}


@functools.lru_cache(maxsize=None)
def real(name: str, split: str, mode: str):
    return load_task(name, split, mode, require_data())


# ---- (a) every task loads from the real data with the right counts and labels ---------------

SPLITS = [(n, "dev") for n in DEV_COUNTS] + [(n, "test") for n in TEST_COUNTS]


@pytest.mark.parametrize("name,split", SPLITS, ids=[f"{n}-{s}" for n, s in SPLITS])
def test_real_data_counts_and_labels(name, split):
    counts = DEV_COUNTS if split == "dev" else TEST_COUNTS
    spec = get_spec(name)
    gen, ppl = real(name, split, "gen"), real(name, split, "ppl")
    assert len(gen.samples) == len(ppl.samples) == counts[name]
    seen = {gen.meta["labels"][s.target] for s in gen.samples}
    assert seen <= set(spec.labels)
    assert len(seen) == PARTIAL_LABELS.get((name, split), len(spec.labels))
    # the same record has the same gold label in both modes, whatever the candidate order
    for g, p in zip(gen.samples, ppl.samples, strict=True):
        assert g.id == p.id
        assert gen.meta["labels"][g.target] == ppl.meta["labels"][p.target]
        assert len(p.ppl_prompts) == len(spec.labels) == len(p.letters)
    assert gen.meta["postprocess"] == spec.postprocess
    assert len({s.id for s in gen.samples}) == len(gen.samples)
    if len(spec.files[split]) == 1:
        assert gen.data_sha256 == file_sha256(DATA / spec.files[split][0])
        assert gen.samples[0].id.startswith("L")


def test_registry_covers_fewclue_and_clue():
    assert set(FEWCLUE_TASKS) == {"bustm", "ocnli_fc", "eprstmt", "csldcp", "tnews", "iflytek",
                                  "chid", "csl", "cluewsc"}
    assert set(CLUE_TASKS) == {"afqmc", "ocnli", "c3"}
    assert set(TASKS) == set(DEV_COUNTS)


def test_letters_follow_opencompass():
    assert get_spec("bustm").letter("0") == "A" and get_spec("bustm").letter("1") == "B"
    assert [get_spec("ocnli_fc").letter(x) for x in ("entailment", "contradiction", "neutral")] == list("ABC")
    assert get_spec("eprstmt").letter("Positive") == "A"
    assert get_spec("tnews").letter("news_agriculture") == "A" and get_spec("tnews").letter("news_stock") == "O"
    assert get_spec("cluewsc").letter("true") == "A" and get_spec("csl").letter("1") == "B"
    assert get_spec("chid").letters == tuple("ABCDEFG")
    assert get_spec("iflytek").letters[-1] == "119" and get_spec("csldcp").letters[-1] == "67"
    # ppl candidates follow OpenCompass's template key order (ties: first minimum wins)
    assert get_spec("eprstmt").candidates("ppl") == ("Negative", "Positive")
    assert get_spec("cluewsc").candidates("ppl") == ("false", "true")


# ---- (c) prompt parity with OpenCompass 0.5.4's own rendering -------------------------------

FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


def _samples_of(task, spec, rel: str):
    if len(spec.files[task.split]) == 1:
        return task.samples
    return [s for s in task.samples if s.id.startswith(Path(rel).stem + "#")]


def _split_of(spec, rel: str) -> str:
    return next(split for split, files in spec.files.items() if rel in files)


def _digest(task, spec, samples) -> str:
    lines = []
    for s in samples:
        if task.mode == "gen":
            entry = {"g": s.letters[s.target], "p": oc_form(spec.gen_template, s.gen_prompt)}
        else:
            entry = {"g": s.target, "p": [oc_form(spec.ppl_templates[lb], p)
                                          for lb, p in zip(task.meta["labels"], s.ppl_prompts)]}
        lines.append(json.dumps(entry, ensure_ascii=False, sort_keys=True))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_fixtures_cover_every_opencompass_task():
    names = {f.stem for f in FIXTURE_FILES}
    expected = {f"{n}_{m}" for n in TASKS if n not in ("iflytek", "csldcp") for m in ("gen", "ppl")}
    assert names == expected


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[f.stem for f in FIXTURE_FILES])
def test_prompts_match_opencompass(path):
    fixture = json.loads(path.read_text(encoding="utf-8"))
    spec = get_spec(fixture["task"])
    mode = fixture["mode"]
    assert fixture["config"] in spec.source
    for item in fixture["items"]:
        task = real(spec.name, _split_of(spec, item["data_file"]), mode)
        sample = _samples_of(task, spec, item["data_file"])[item["index"]]
        if mode == "gen":
            assert oc_form(spec.gen_template, sample.gen_prompt) == item["prompt"]
            assert oc_base_text(sample.gen_prompt) == item["base_text"]
            assert sample.letters[sample.target] == item["gold"]
        else:
            labels = [str(c["label"]) for c in item["candidates"]]
            assert sample.target == labels.index(str(item["gold"]))
            assert len(sample.ppl_prompts) == len(item["candidates"])
            for label, prompt, cand in zip(task.meta["labels"], sample.ppl_prompts, item["candidates"]):
                assert oc_form(spec.ppl_templates[label], prompt) == cand["prompt"]
                assert oc_base_text(prompt) == cand["base_text"]
    # every item of every dev and test file, through the digest
    for rel, want in fixture["digests"].items():
        task = real(spec.name, _split_of(spec, rel), mode)
        samples = _samples_of(task, spec, rel)
        # OpenCompass's ppl loader for CLUE ocnli keeps the 50 "-" items bench drops
        assert len(samples) == fixture["counts"][rel] - want["excluded"] == want["items"]
        assert _digest(task, spec, samples) == want["sha256"], rel


# ---- (b) file quirks on tiny files -----------------------------------------------------------


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def _line(**record) -> str:
    return json.dumps(record, ensure_ascii=False)


def test_crlf_and_missing_final_newline(tmp_path):
    rows = [_line(id=0, sentence1="甲", sentence2="乙", label="1"), _line(id=1, sentence1="丙", sentence2="丁", label="0")]
    _write(tmp_path, "fewclue/bustm/dev_few_all.json", "\r\n".join(rows))  # CRLF, no final newline
    task = load_task("bustm", "dev", "gen", tmp_path)
    assert [s.id for s in task.samples] == ["L1", "L2"]
    assert [s.letters[s.target] for s in task.samples] == ["B", "A"]
    assert "\r" not in task.samples[0].gen_prompt[0].prompt


def test_u2028_stays_inside_a_record(tmp_path):
    text = _line(label=8, label_des="公共交通", sentence="第一行\u2028第二行", id=1) + "\n"
    text += _line(label=0, label_des="打车", sentence="叫车", id=2) + "\n"
    _write(tmp_path, "fewclue/iflytek/dev_few_all.json", text)
    task = load_task("iflytek", "dev", "gen", tmp_path)
    assert len(task.samples) == 2
    assert task.samples[0].gen_prompt[0].prompt.startswith("第一行\u2028第二行\n")
    assert task.samples[0].letters[task.samples[0].target] == "9"


def test_cluewsc_idx_or_id(tmp_path):
    target = {"span2_index": 5, "span1_index": 0, "span1_text": "小明", "span2_text": "他"}
    text = (_line(target=target, idx=0, label="true", text="小明说完了他就走了") + "\n"
            + _line(target=target, id=1, label="false", text="小明说完了他就走了") + "\n")
    _write(tmp_path, "fewclue/cluewsc/dev_few_all.json", text)
    for mode in ("gen", "ppl"):
        task = load_task("cluewsc", "dev", mode, tmp_path)
        assert [task.meta["labels"][s.target] for s in task.samples] == ["true", "false"]


def test_tnews_int_labels(tmp_path):
    text = "\n".join([
        _line(label=102, label_desc="news_entertainment", sentence="新片上映", keywords="", id=1),
        _line(label=103, sentence="球队夺冠", id=2),  # no label_desc: the int label decides
        _line(label="116", sentence="电竞比赛", id=3),  # label as a string, as in the README example
    ]) + "\n"
    _write(tmp_path, "fewclue/tnews/dev_few_all.json", text)
    task = load_task("tnews", "dev", "gen", tmp_path)
    assert [s.letters[s.target] for s in task.samples] == ["G", "E", "C"]
    ppl = load_task("tnews", "dev", "ppl", tmp_path)
    assert ppl.samples[1].ppl_prompts[ppl.samples[1].target][-1].prompt == "体育类别新闻"


def test_ocnli_drops_dash_labels_and_blank_lines_keep_numbers(tmp_path):
    text = (_line(sentence1="甲", sentence2="乙", label="entailment", id=0) + "\n\n"
            + _line(sentence1="丙", sentence2="丁", label="-", id=1) + "\n"
            + _line(sentence1="戊", sentence2="己", label="neutral", id=2))
    _write(tmp_path, "clue/ocnli/dev.json", text)
    task = load_task("ocnli", "dev", "ppl", tmp_path)
    assert [s.id for s in task.samples] == ["L1", "L4"]


def test_corrupt_line_names_file_and_line(tmp_path):
    path = _write(tmp_path, "fewclue/eprstmt/dev_few_all.json",
                  _line(id=0, sentence="好", label="Positive") + "\n{\"id\": 1, \"sentence\": \n")
    with pytest.raises(BenchError, match=rf"{path}:2: not valid JSON"):
        load_task("eprstmt", "dev", "gen", tmp_path)


@pytest.mark.parametrize("name,record,needle", [
    ("eprstmt", {"id": 0, "sentence": "好", "label": "positive"}, "'positive'"),
    ("bustm", {"id": 0, "sentence1": "a", "sentence2": "b", "label": "2"}, "'2'"),
    ("chid", {"id": 0, "candidates": ["一"] * 7, "content": "#idiom#", "answer": 9}, "'9'"),
    ("csl", {"id": 0, "abst": "x", "keyword": ["y"]}, "KeyError"),
])
def test_bad_gold_label_is_a_clear_error(tmp_path, name, record, needle):
    rel = get_spec(name).files["dev"][0]
    path = _write(tmp_path, rel, _line(id=5, sentence="好", label="Positive") + "\n" + _line(**record) + "\n"
                  if name == "eprstmt" else _line(**record) + "\n")
    line = 2 if name == "eprstmt" else 1
    with pytest.raises(BenchError) as err:
        load_task(name, "dev", "gen", tmp_path)
    message = str(err.value)
    assert f"{path}:{line}" in message and needle in message
    assert "allowed labels: " + ", ".join(get_spec(name).labels) in message


def test_c3_answer_not_among_choices(tmp_path):
    doc = [["男：你好。"], [{"question": "他说了什么?", "choice": ["你好", "再见"], "answer": "谢谢"}], "1-1"]
    _write(tmp_path, "clue/c3/c3-d-dev.json", json.dumps([doc], ensure_ascii=False))
    _write(tmp_path, "clue/c3/c3-m-dev.json", "[]")
    with pytest.raises(BenchError, match="c3-d-dev.json: document 0 question 0"):
        load_task("c3", "dev", "gen", tmp_path)


def test_missing_file_and_split(tmp_path):
    with pytest.raises(BenchError, match="not found.*bench.tasks.download"):
        load_task("bustm", "dev", "gen", tmp_path)
    with pytest.raises(BenchError, match="no split 'test'"):
        load_task("afqmc", "test", "gen", tmp_path)
    with pytest.raises(BenchError, match="unknown mode"):
        load_task("bustm", "dev", "ppx", DEMO_DATA_DIR)


# ---- (d) bundled demo data -------------------------------------------------------------------

DEMO = [(n, s, m) for n in FEWCLUE_TASKS for s in ("dev", "test") for m in ("gen", "ppl")]


@pytest.mark.parametrize("name,split,mode", DEMO, ids=["-".join(x) for x in DEMO])
def test_demo_data_loads(name, split, mode):
    task = load_task(name, split, mode, DEMO_DATA_DIR)
    assert len(task.samples) == 12
    labels = Counter(task.meta["labels"][s.target] for s in task.samples)
    assert len(labels) >= 2 and max(labels.values()) - min(labels.values()) <= 2
    for s in task.samples:
        prompts = s.ppl_prompts if mode == "ppl" else (s.gen_prompt,)
        assert all("{" not in m.prompt for p in prompts for m in p), s.id


def test_demo_cluewsc_spans_are_valid():
    for split in ("dev", "test"):
        for s in load_task("cluewsc", split, "gen", DEMO_DATA_DIR).samples:
            t, text = s.doc["target"], s.doc["text"]
            assert text[t["span1_index"]:][: len(t["span1_text"])] == t["span1_text"]
            assert text[t["span2_index"]:][: len(t["span2_text"])] == t["span2_text"]


# ---- (e) names, fingerprints, post-processors ------------------------------------------------


def test_unknown_task_suggests():
    with pytest.raises(BenchError, match="unknown task 'bustn'.*did you mean 'bustm'"):
        get_spec("bustn")
    with pytest.raises(BenchError, match="did you mean 'ocnli_fc'"):
        load_task("ocnli-fc", "dev", "gen", DEMO_DATA_DIR)


def test_fingerprint_tracks_prompts_and_data(tmp_path):
    import dataclasses

    spec = get_spec("bustm")
    changed = dataclasses.replace(spec, gen_template=(("HUMAN", "{sentence1}"),))
    assert changed.fingerprint != spec.fingerprint
    assert dataclasses.replace(spec, version="2").fingerprint != spec.fingerprint
    gen, ppl = (load_task("bustm", "dev", m, DEMO_DATA_DIR) for m in ("gen", "ppl"))
    assert gen.spec_fingerprint == ppl.spec_fingerprint and gen.fingerprint != ppl.fingerprint


def test_postprocessors():
    first_capital = postprocess.get("first_capital")
    assert first_capital("答案是B。") == "B" and first_capital("i think so") == "" and first_capital("") == ""
    assert first_capital("the answer: C") == "C" and first_capital("选Ｂ") == "Ｂ"  # str.isupper, as OpenCompass
    first_number = postprocess.get("first_number")
    assert first_number("答：12. 办公") == "12" and first_number("无") == "" and first_number("第007项") == "7"
    assert postprocess.decided("first_capital", "答案是B")
    assert not postprocess.decided("first_number", "答：1") and postprocess.decided("first_number", "答：12。")
    with pytest.raises(BenchError, match="did you mean 'first_capital'"):
        postprocess.get("first_capitol")


# ---- (f) pinned download, served by a fake opener --------------------------------------------


def test_download_verifies_and_renames(tmp_path, monkeypatch):
    src = require_data()
    calls = []

    def opener(url: str) -> bytes:
        calls.append(url)
        prefix = f"https://raw.githubusercontent.com/CLUEbenchmark/FewCLUE/{download.COMMIT}/datasets/"
        assert url.startswith(prefix)
        return (src / "fewclue" / url[len(prefix):]).read_bytes()

    root = download.ensure(["bustm", "ocnli_fc"], root=tmp_path, opener=opener)
    assert len(calls) == 4 and "ocnli/test_public.json" in calls[-1]
    assert load_task("ocnli_fc", "test", "gen", root).samples
    assert not list(tmp_path.rglob("*.part"))
    download.ensure(["bustm"], root=tmp_path, opener=opener)  # cached and verified: no new call
    assert len(calls) == 4


def test_download_rejects_a_corrupted_byte(tmp_path, monkeypatch):
    src = require_data()
    good = (src / "fewclue/bustm/dev_few_all.json").read_bytes()
    bad = good[:100] + bytes([good[100] ^ 1]) + good[101:]
    with pytest.raises(BenchError, match=r"dev_few_all\.json: downloaded .* expected 921a93ac.*nothing was saved"):
        download.fetch_file("bustm/dev_few_all.json", tmp_path, opener=lambda url: bad)
    assert not (tmp_path / "fewclue/bustm/dev_few_all.json").exists()
    assert not list(tmp_path.rglob("*.part"))
    # a cached file altered on disk is fetched again
    dest = tmp_path / "fewclue/bustm/dev_few_all.json"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(bad)
    download.fetch_file("bustm/dev_few_all.json", tmp_path, opener=lambda url: good)
    assert dest.read_bytes() == good


def test_download_default_opener_uses_urllib(tmp_path, monkeypatch):
    """No data needed: pin a demo file's blob and serve it through a fake urlopen."""
    demo = (DEMO_DATA_DIR / "fewclue/eprstmt/dev_few_all.json").read_bytes()
    monkeypatch.setitem(download.BLOBS, "eprstmt/dev_few_all.json", download.git_blob_sha1(demo))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))

    class Response:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return demo

    seen = []
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda req, timeout: seen.append(req.full_url) or Response())
    path = download.fetch_file("eprstmt/dev_few_all.json")
    assert path == tmp_path / "cache/fewclue/eprstmt/dev_few_all.json" and path.read_bytes() == demo
    assert seen == [download.url_for("eprstmt/dev_few_all.json")]

    def offline(req, timeout):
        raise download.urllib.error.URLError("no route")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    with pytest.raises(BenchError, match="could not download .*--data-dir"):
        download.fetch_file("bustm/dev_few_all.json", tmp_path)
    with pytest.raises(BenchError, match="not a FewCLUE task"):
        download.ensure(["afqmc"], root=tmp_path)
