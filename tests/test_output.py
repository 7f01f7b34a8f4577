"""What bench prints: its own lines on the terminal, library chatter in a redacted log file kept
with the run, tables that never cut names when piped."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import warnings

import pytest

from bench.logs import redact, third_party_output
from tests.helpers import ROOT, bench_cli, write_models


@pytest.fixture
def lm_eval_suite(tmp_path):
    pytest.importorskip("lm_eval")
    tasks = tmp_path / "lm_tasks"
    tasks.mkdir()
    text = (ROOT / "tests/fixtures/lm_eval_tasks/bench_bustm.yaml").read_text(encoding="utf-8")
    (tasks / "bench_bustm.yaml").write_text(
        text.replace("bench/tasks/demo_data", str(ROOT / "bench/tasks/demo_data")), encoding="utf-8")
    suite = tmp_path / "lm.yaml"
    suite.write_text(f"name: lm\nmode: ppl\ntasks:\n  - {{engine: lm-eval, name: bench_bustm, "
                     f"include_path: {tasks}}}\n", encoding="utf-8")
    return suite


def test_library_output_goes_to_the_runs_log_not_the_terminal(tmp_path, tiny_model_dir, lm_eval_suite):
    models = write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)
    proc = bench_cli("run", "--suite", str(lm_eval_suite), "--models", str(models),
                     "--results", str(tmp_path / "results"))
    assert proc.returncode == 0, proc.stderr
    for noise in ("it/s]", "WARNING", "Running loglikelihood requests", "past_key_values"):
        assert noise not in proc.stderr, proc.stderr
    (manifest,) = sqlite3.connect(tmp_path / "results" / "bench.sqlite").execute(
        "SELECT manifest FROM runs").fetchone()
    log = json.loads(manifest)["log_file"]
    assert f"library messages (warnings, progress): {log}" in proc.stderr
    text = open(log, encoding="utf-8").read()
    assert "Running loglikelihood requests" in text and "WARNING lm_eval" in text

    verbose = bench_cli("run", "--suite", str(lm_eval_suite), "--models", str(models),
                        "--results", str(tmp_path / "results2"), "--verbose")
    assert verbose.returncode == 0 and "Running loglikelihood requests" in verbose.stderr


def test_log_file_is_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_API_KEY", "zq81-very-private-value")
    path = tmp_path / "logs" / "x.log"
    with third_party_output(path) as log:
        assert log == path
        os.write(2, b"raw write: key sk-abcdefghijklmnop123456 and zq81-very-private-value\n")
        logging.getLogger("transformers.x").warning("calling with api_key=hunter2hunter2")
        warnings.warn("Authorization: Bearer abc.def.ghi-123456", UserWarning)
        os.write(2, b"plain stderr line\n")
    text = path.read_text(encoding="utf-8")
    for secret in ("sk-abcdefghijklmnop123456", "zq81-very-private-value", "hunter2hunter2",
                   "abc.def.ghi-123456"):
        assert secret not in text
    assert "[REDACTED]" in text and "plain stderr line" in text
    assert redact("token: abcd1234 and nothing else") == "token: [REDACTED] and nothing else"


def test_models_table_never_cuts_names_when_piped(tmp_path, tiny_model_dir):
    long = "a-very-long-model-name-that-would-not-fit-in-eighty-columns-qwen2.5-0.5b-instruct"
    deep = tmp_path / ("nested-folder-with-a-long-name/" * 3) / "model"
    deep.parent.mkdir(parents=True)
    os.symlink(tiny_model_dir, deep)
    models = write_models(tmp_path / "models.yaml", **{long.replace("-", "_"): deep})
    text = (tmp_path / "models.yaml").read_text().replace(long.replace("-", "_"), long)
    (tmp_path / "models.yaml").write_text(text)
    proc = bench_cli("models", "--models", str(models), env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert long in proc.stdout and str(deep) in proc.stdout and "…" not in proc.stdout
