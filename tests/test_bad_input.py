"""Bad input as a new user brings it: every case is one message naming the file, line or key and
what to do, exit 2, no traceback, and nothing written (no store, no run) when the input is refused."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tracemalloc
from pathlib import Path

import pytest

import bench
from bench.store import SCHEMA_VERSION
from bench.files import iter_jsonl
from bench.rows import RowLog
from tests.helpers import bench_cli, write_models, write_suite


def bustm_row(i: int, **override) -> str:
    record = {"id": i, "sentence1": f"第{i}句", "sentence2": f"第{i}个句子", "label": str(i % 2)}
    record.update(override)
    return json.dumps({k: v for k, v in record.items() if v is not None}, ensure_ascii=False)


def write_data(root: Path, rows: list[str], task: str = "bustm", name: str = "dev_few_all.json") -> Path:
    path = root / "fewclue" / task / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    return path


@pytest.fixture
def models_file(tmp_path, tiny_model_dir) -> Path:
    return write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)


def run(tmp_path, *args, env=None):
    return bench_cli("run", *args, "--results", str(tmp_path / "results"), env=env)


def refused(proc, *needles: str) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    return proc.stderr


def no_store(tmp_path) -> bool:
    return not (tmp_path / "results").exists()


# ---- duplicate keys ---------------------------------------------------------------------------


def test_models_key_given_twice_names_both_lines(tmp_path, tiny_model_dir):
    models = tmp_path / "models.yaml"
    models.write_text(f"models:\n  - name: a\n    path: {tiny_model_dir}\nmodels:\n"
                      f"  - name: b\n    path: {tiny_model_dir}\n", encoding="utf-8")
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"])
    refused(run(tmp_path, "--suite", str(suite), "--models", str(models)),
            "models.yaml:4: key 'models' is given twice (lines 1 and 4)")
    assert no_store(tmp_path)


def test_suite_key_given_twice_inside_a_task_entry(tmp_path, models_file):
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ntasks:\n  - name: bustm\n    mode: gen\n    mode: ppl\n", encoding="utf-8")
    refused(run(tmp_path, "--suite", str(suite), "--models", str(models_file)),
            "s.yaml:5: key 'mode' is given twice (lines 4 and 5)")


def test_model_name_repeated_names_both_entries(tmp_path, tiny_model_dir):
    models = tmp_path / "models.yaml"
    models.write_text(f"models:\n  - name: a\n    path: {tiny_model_dir}\n"
                      f"  - name: a\n    path: {tiny_model_dir}\n", encoding="utf-8")
    proc = bench_cli("models", "--models", str(models))
    refused(proc, "models.yaml:4: model name 'a' is used twice (lines 2 and 4)")


# ---- the bad-row policy -----------------------------------------------------------------------


def test_missing_field_is_a_bad_row_reported_skipped_and_counted(tmp_path, models_file):
    rows = [bustm_row(i) for i in range(40)]
    rows[6] = bustm_row(6, sentence2=None)  # line 7
    data = write_data(tmp_path / "data", rows)
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"])
    proc = run(tmp_path, "--suite", str(suite), "--models", str(models_file),
               "--data-dir", str(tmp_path / "data"))
    assert proc.returncode == 0, proc.stderr
    assert f"{data}:7: task 'bustm': missing field 'sentence2'" in proc.stderr
    assert "1 bad of 40 read" in proc.stdout  # the run's table counts it
    con = sqlite3.connect(tmp_path / "results" / "bench.sqlite")
    (manifest,) = con.execute("SELECT manifest FROM runs").fetchone()
    rows_kept = json.loads(manifest)["tasks"]["bustm-dev"]["rows"]
    assert rows_kept["read"] == 40 and rows_kept["kept"] == 39 and rows_kept["bad"] == 1
    assert rows_kept["bad_rows"] == [{"where": f"{data}:7",
                                      "reason": "task 'bustm': missing field 'sentence2'"}]
    records = [json.loads(r) for (r,) in con.execute("SELECT record FROM records")]
    assert len(records) == 39 and not any("{sentence2}" in r["input"] for r in records)


def test_too_many_bad_rows_stop_before_any_model_loads(tmp_path):
    rows = [bustm_row(0), bustm_row(1, sentence2=None), bustm_row(2, label="7"), "{oops"]
    data = write_data(tmp_path / "data", rows)
    # a model that cannot load: the data is refused first, so its message never comes up
    models = write_models(tmp_path / "models.yaml", tiny=tmp_path / "no-such-model")
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"])
    err = refused(run(tmp_path, "--suite", str(suite), "--models", str(models),
                      "--data-dir", str(tmp_path / "data")),
                  f"{data}:2: task 'bustm': missing field 'sentence2'",
                  f"{data}:3: task 'bustm': gold label '7' is not one of the allowed labels: 0, 1",
                  f"{data}:4: not valid JSON",
                  "3 of 4 rows are bad (75.0%, over max_bad_fraction 0.05)", "max_bad_fraction")
    assert "no-such-model" not in err and "cannot load" not in err
    assert no_store(tmp_path)


def test_max_bad_fraction_is_set_per_suite(tmp_path, models_file):
    write_data(tmp_path / "data", [bustm_row(0), bustm_row(1, sentence1=None), bustm_row(2)])
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], max_bad_fraction=0.5)
    proc = run(tmp_path, "--suite", str(suite), "--models", str(models_file),
               "--data-dir", str(tmp_path / "data"))
    assert proc.returncode == 0, proc.stderr
    assert "missing field 'sentence1'" in proc.stderr and "1 bad of 3 read" in proc.stdout


def test_rows_dropped_on_purpose_are_counted(tmp_path, models_file):
    ocnli = tmp_path / "data" / "clue" / "ocnli" / "dev.json"
    ocnli.parent.mkdir(parents=True)
    rows = [{"sentence1": "甲", "sentence2": "乙", "label": lb} for lb in ("entailment", "-", "neutral", "-")]
    ocnli.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    suite = write_suite(tmp_path / "s.yaml", "s", ["ocnli"], mode="ppl")
    proc = run(tmp_path, "--suite", str(suite), "--models", str(models_file),
               "--data-dir", str(tmp_path / "data"))
    assert proc.returncode == 0, proc.stderr
    assert f"{ocnli}: dropped 2 rows: label '-'" in proc.stderr
    assert "2 dropped of 4 read" in proc.stdout


def test_empty_data_file(tmp_path, models_file):
    data = write_data(tmp_path / "data", [])
    data.write_bytes(b"")
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"])
    refused(run(tmp_path, "--suite", str(suite), "--models", str(models_file),
                "--data-dir", str(tmp_path / "data")), f"no samples in {data}")
    assert no_store(tmp_path)


def test_json_array_file_is_not_json_lines(tmp_path, models_file):
    data = tmp_path / "data" / "fewclue" / "bustm" / "dev_few_all.json"
    data.parent.mkdir(parents=True)
    data.write_text("[" + ", ".join(bustm_row(i) for i in range(3)) + "]", encoding="utf-8")
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"])
    refused(run(tmp_path, "--suite", str(suite), "--models", str(models_file),
                "--data-dir", str(tmp_path / "data")),
            f"{data}:1: this is one JSON array, not JSON Lines")


def test_over_long_row_is_a_bad_row_naming_its_size(tmp_path, models_file):
    rows = [bustm_row(i) for i in range(30)]
    rows[2] = bustm_row(2, sentence1="长" * 400_000)  # 1.2 MB > the 1 MiB default
    data = write_data(tmp_path / "data", rows)
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], mode="ppl")
    proc = run(tmp_path, "--suite", str(suite), "--models", str(models_file),
               "--data-dir", str(tmp_path / "data"))
    assert proc.returncode == 0, proc.stderr
    assert f"{data}:3: row of 1,200," in proc.stderr and "over the 1,048,576-byte limit" in proc.stderr


def test_reading_memory_stays_a_small_multiple_of_the_row(tmp_path):
    """Accepted: peak < 8x the row's bytes. Refused: peak bounded by the limit, not the row
    (figures for a 50 MiB row: benchmarks/read_memory.py)."""
    path = tmp_path / "big.jsonl"
    for row_bytes, limit in [(3_000_000, 4_000_000), (24_000_000, 1 << 20)]:
        with path.open("w", encoding="utf-8") as f:
            f.write(bustm_row(0) + "\n" + bustm_row(1, sentence1="长" * (row_bytes // 3)) + "\n"
                    + bustm_row(2) + "\n")
        log = RowLog(str(path))
        tracemalloc.start()
        kept = [r["id"] for _, r in iter_jsonl(path, log, limit)]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if row_bytes <= limit:
            assert kept == [0, 1, 2] and peak < 8 * row_bytes
        else:
            assert kept == [0, 2] and log.bad_rows[0][0] == f"{path}:2"
            assert peak < 8 * limit < row_bytes / 2


def test_data_line_not_utf8_is_a_bad_row(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(bustm_row(0).encode() + b"\n" + b'{"sentence1": "\xff\xfe"}\n')
    log = RowLog(str(path))
    assert [r["id"] for _, r in iter_jsonl(path, log)] == [0]
    assert log.bad_rows == [(f"{path}:2", "not UTF-8 (byte 0xff at byte 16 of the line)")]


# ---- files that are not UTF-8, and messages that name enough ---------------------------------


def test_suite_not_utf8_names_file_line_and_byte(tmp_path, models_file):
    suite = tmp_path / "s.yaml"
    suite.write_bytes("name: s\ntasks: [bustm]\n# caf".encode() + b"\xe9\n")
    refused(run(tmp_path, "--suite", str(suite), "--models", str(models_file)),
            f"{suite}:3: not UTF-8 (byte 0xe9 at byte 6 of the line)", "re-save the file as UTF-8")
    assert no_store(tmp_path)


def test_unknown_key_in_a_model_entry_names_the_entry_and_the_likely_key(tmp_path, tiny_model_dir):
    models = tmp_path / "models.yaml"
    models.write_text(f"models:\n  - name: tiny-qwen\n    modle: {tiny_model_dir}\n", encoding="utf-8")
    err = refused(bench_cli("models", "--models", str(models)),
                  "models.yaml:3: model 'tiny-qwen': models.0.modle: unknown key 'modle' "
                  "(did you mean 'path'? it is required and missing)")
    assert "Field required" not in err


@pytest.mark.parametrize("text", ["", "# only a comment\n", "models: []\n"])
def test_models_file_without_models(tmp_path, text):
    models = tmp_path / "models.yaml"
    models.write_text(text, encoding="utf-8")
    err = refused(bench_cli("models", "--models", str(models)), f"{models}: defines no models")
    assert "valid dictionary" not in err


def test_unknown_task_name_names_file_and_line(tmp_path, models_file):
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ntasks:\n  - bustm\n  - eprstmnt\n", encoding="utf-8")
    refused(run(tmp_path, "--suite", str(suite), "--models", str(models_file)),
            f"{suite}:4: unknown task 'eprstmnt' (did you mean 'eprstmt'?)")
    assert no_store(tmp_path)


def test_local_looking_model_path_that_does_not_exist(tmp_path):
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  - name: mine\n    path: ./does-not-exist/tiny-model\n", encoding="utf-8")
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"])
    err = refused(bench_cli("run", "--suite", str(suite), "--models", str(models), "--results",
                            str(tmp_path / "results"), cwd=tmp_path),
                  "models.yaml:2: model 'mine': path: local folder './does-not-exist/tiny-model' "
                  f"does not exist (resolved: {tmp_path / 'does-not-exist' / 'tiny-model'})")
    assert "Repo id" not in err
    assert no_store(tmp_path)


def test_missing_suite_file_creates_no_store(tmp_path, models_file):
    refused(run(tmp_path, "--suite", str(tmp_path / "nope.yaml"), "--models", str(models_file)),
            "nope.yaml: file not found")
    assert no_store(tmp_path)


def test_store_of_another_schema_version(tmp_path, models_file):
    db = tmp_path / "results" / "bench.sqlite"
    db.parent.mkdir()
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    con.commit()
    con.close()
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=2)
    refused(run(tmp_path, "--suite", str(suite), "--models", str(models_file)),
            f"{db}: written by a newer bench with store schema 99; this bench "
            f"{bench.__version__} reads schema {SCHEMA_VERSION} and older", "point --results")
    tables = sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    assert tables == [("meta",)]  # the refused store was not touched


# ---- remote code ------------------------------------------------------------------------------

MARKER_CONFIG = '''
from pathlib import Path
from transformers import Qwen3Config
Path({marker!r}).write_text("config code ran")

class MarkerConfig(Qwen3Config):
    model_type = "qwen3"
'''
MARKER_MODEL = '''
from transformers import Qwen3ForCausalLM
from .configuration_marker import MarkerConfig

class MarkerForCausalLM(Qwen3ForCausalLM):
    config_class = MarkerConfig
'''


@pytest.fixture
def remote_code_model(tmp_path, tiny_model_dir) -> tuple[Path, Path]:
    """A copy of the tiny model whose config names custom code that leaves a marker file."""
    model = tmp_path / "remote-model"
    shutil.copytree(tiny_model_dir, model)
    marker = tmp_path / "REMOTE_CODE_RAN"
    (model / "configuration_marker.py").write_text(MARKER_CONFIG.format(marker=str(marker)))
    (model / "modeling_marker.py").write_text(MARKER_MODEL)
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_marker.MarkerConfig",
                          "AutoModelForCausalLM": "modeling_marker.MarkerForCausalLM"}
    (model / "config.json").write_text(json.dumps(config))
    return model, marker


def trusting_config(tmp_path, model) -> tuple[Path, Path]:
    """A models.yaml whose one entry sets trust_remote_code, and a two-sample suite."""
    models = tmp_path / "models.yaml"
    models.write_text(f"models:\n  - name: custom\n    path: {model}\n    device: cpu\n"
                      "    dtype: float32\n    trust_remote_code: true\n", encoding="utf-8")
    return models, write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=2)


def test_remote_code_is_refused_without_the_opt_in(tmp_path, remote_code_model):
    model, marker = remote_code_model
    models, suite = trusting_config(tmp_path, model)
    env = {"HF_MODULES_CACHE": str(tmp_path / "modules"), "BENCH_TRUST_REMOTE_CODE": ""}
    refused(run(tmp_path, "--suite", str(suite), "--models", str(models), env=env),
            "models.yaml:2: model 'custom' sets trust_remote_code: true", "--trust-remote-code",
            "BENCH_TRUST_REMOTE_CODE=1")
    assert not marker.exists() and no_store(tmp_path)
    listed = bench_cli("models", "--models", str(models), env=env)
    assert "model 'custom': trust_remote_code is set" in listed.stdout and not marker.exists()


def test_remote_code_runs_with_the_opt_in_warned_and_recorded(tmp_path, remote_code_model):
    model, marker = remote_code_model
    models, suite = trusting_config(tmp_path, model)
    env = {"HF_MODULES_CACHE": str(tmp_path / "modules"), "BENCH_TRUST_REMOTE_CODE": "1"}
    proc = run(tmp_path, "--suite", str(suite), "--models", str(models), env=env)
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()
    assert "warning: model 'custom' runs the Python code in" in proc.stderr
    (manifest,) = sqlite3.connect(tmp_path / "results" / "bench.sqlite").execute(
        "SELECT manifest FROM runs").fetchone()
    assert json.loads(manifest)["trust_remote_code"] is True


def test_remote_code_in_the_folder_does_not_run_when_not_asked_for(tmp_path, remote_code_model):
    model, marker = remote_code_model
    models = write_models(tmp_path / "models.yaml", plain=model)
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=2)
    proc = run(tmp_path, "--suite", str(suite), "--models", str(models),
               env={"HF_MODULES_CACHE": str(tmp_path / "modules")})
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()


def test_a_data_file_that_is_not_what_the_key_expects_names_suite_key_and_path(tmp_path, models_file):
    """A suite may point outside its folder (the shipped held-out suite does), but a file with no
    usable row is refused naming the suite's line, the key, the resolved path, and never quotes
    a line of it."""
    secret = tmp_path / "elsewhere" / "secrets.txt"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:TOP-SECRET-LINE\nuser:x:1000:1000:ANOTHER-LINE\n", encoding="utf-8")
    suites = tmp_path / "suites"
    suites.mkdir()
    suite = suites / "s.yaml"
    suite.write_text("name: s\ntasks:\n  - {name: shop, kind: open, data: ../elsewhere/secrets.txt}\n",
                     encoding="utf-8")
    proc = run(tmp_path, "--suite", str(suite), "--models", str(models_file))
    refused(proc, f"{suite}:3: task 'shop' (open), data: ../elsewhere/secrets.txt (resolved: "
                  f"{secret.resolve()})", "secrets.txt: all 2 rows: not valid JSON",
                  "(the first at ", "secrets.txt:1)", "not one row is usable")
    assert "TOP-SECRET" not in proc.stderr + proc.stdout and "ANOTHER-LINE" not in proc.stderr
    assert no_store(tmp_path)


def test_rows_that_all_fail_alike_are_said_once():
    log = RowLog("pairs.jsonl")
    for i in range(300):
        log.bad(f"pairs.jsonl:{i + 1}", "'output' is missing")
    assert log.lines() == ["pairs.jsonl: all 300 rows: 'output' is missing (the first at "
                           "pairs.jsonl:1)"]
    log.kept = 1  # some rows were fine: each bad one is named, then a count by reason
    lines = log.lines()
    assert lines[0] == "pairs.jsonl:1: 'output' is missing" and len(lines) == 11
    assert lines[-1].endswith("all 300 by reason: 300 × 'output' is missing")
