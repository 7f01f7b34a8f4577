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


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_writes_flat_tables_pandas_reads(tmp_path, tiny_model_dir, fmt):
    pd = pytest.importorskip("pandas")
    models = write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmode: ppl\nlimit: 5\ntasks: [bustm, eprstmt]\n", encoding="utf-8")
    results = str(tmp_path / "results")
    assert bench_cli("run", "--suite", str(suite), "--models", str(models), "--results", results).returncode == 0
    proc = bench_cli("export", "--suite", str(suite), "--format", fmt, "--results", results,
                     "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    read = {"csv": pd.read_csv, "parquet": pd.read_parquet,
            "jsonl": lambda p: pd.read_json(p, lines=True)}[fmt]
    metrics, samples = read(tmp_path / "out" / f"metrics.{fmt}"), read(tmp_path / "out" / f"samples.{fmt}")
    assert sorted(metrics["task"]) == ["bustm-dev", "eprstmt-dev"]
    assert set(metrics["signature"]) == {"acc|mode:ppl-oc|norm:oc-mean-ce"}
    assert (metrics["n"] == 5).all() and (metrics["ci_low"] <= metrics["value"]).all()
    assert (metrics["value"] <= metrics["ci_high"]).all() and (metrics["tokens_pushed"] > 0).all()
    assert len(samples) == 10 and set(samples["model"]) == {"tiny"}
    by_task = samples.groupby("task")["score"].mean()
    for _, m in metrics.iterrows():
        assert by_task[m["task"]] == pytest.approx(m["value"])
    assert samples["input"].str.contains("语句一：").sum() == 5


def test_leaderboard_after_a_cached_rerun_keeps_compute_figures_and_terminal_cis(tmp_path, tiny_model_dir):
    """A fully cached rerun: the page still shows what computing the results took, says they came
    from the cache, and prints the same suite-average CI as the terminal did."""
    from bench.evaluate.suite import run_suite
    from bench.report.leaderboard import leaderboard_data
    from bench.report.render import render_leaderboard
    from bench.report.terminal import pct
    from bench.store import Store
    from bench.tasks.loaders import DEMO_DATA_DIR

    models = write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmode: gen\ntasks: [bustm, eprstmt, chid]\n", encoding="utf-8")
    store = Store(tmp_path / "bench.sqlite")
    (first,) = run_suite(suite, models, None, DEMO_DATA_DIR, None, store)
    (second,) = run_suite(suite, models, None, DEMO_DATA_DIR, None, store)
    assert second.model_calls == 0
    (model,) = leaderboard_data(store, "s")["models"]
    first_wall = sum(t.timings["wall_s"] for t in first.tasks)
    first_tokens = sum(t.timings["tokens_pushed"] for t in first.tasks)
    assert model["run_id"] == second.run_id and model["cached_share"] == 1.0
    assert model["tokens_pushed"] == first_tokens > 0
    assert model["wall_s"] == pytest.approx(first_wall, rel=0.05) and model["tokens_per_s"] > 0
    assert model["average"] == second.average == first.average
    html = render_leaderboard(leaderboard_data(store, "s"))
    assert "100.0% cached" in html
    low, high = (f"{100 * second.average[k]:.1f}" for k in ("ci_low", "ci_high"))
    assert f"[{low}, {high}]" in pct(second.average) and f"[{low}, {high}]" in html
    # early stop: a prediction cut at the decided letter says so, in the record and on the page
    from bench.tasks.postprocess import first_capital

    records = [r for t in ("bustm-dev", "eprstmt-dev", "chid-dev") for r in store.run_records(second.run_id, t)]
    cut = [r for r in records if r.get("prediction_cut")]
    assert cut and all(first_capital(r["prediction"]) == r["answer"] != "" for r in cut)
    assert all(not first_capital(r["prediction"]) for r in records if not r.get("prediction_cut"))
    shown = [e for ex in leaderboard_data(store, "s")["examples"].values() for e in ex]
    assert html.count("cut: decoding stopped once the answer was decided") == sum(
        bool(e["prediction_cut"]) for e in shown) > 0
