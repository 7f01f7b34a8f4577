"""The environment is part of the experiment: the lock the venv came from, the versions a run
records, and a cache miss that says why (answers stored under another transformers), with
`--reuse-across-versions` to take them, marked as such on every page."""

import json
import re
import sqlite3

import transformers

from bench.evaluate.suite import run_suite
from bench.evaluate.versions import Elsewhere
from bench.lockfile import BENCH_LOCK, OC_LOCK, drift, read_lock
from bench.store import Store
from bench.tasks.loaders import DEMO_DATA_DIR
from tests.helpers import ROOT, bench_cli, require, write_models, write_suite

OLD = "5.23.0"  # the transformers a store was written under, other than this environment's


def test_installed_environment_equals_the_lock():
    """A drifted .venv fails here, with the packages and the command that fixes it, instead of
    as mysterious cache misses elsewhere."""
    from bench.lockfile import FIX, installed

    found = drift(read_lock(BENCH_LOCK), installed())
    assert not found, (f"this environment is not {BENCH_LOCK.relative_to(ROOT)}:\n  "
                       + "\n  ".join(found[:40]) + f"\nfix: {FIX}")


def test_opencompass_venv_equals_its_lock():
    import subprocess

    from bench.engines.opencompass_config import oc_install
    from bench.errors import BenchError

    try:
        python = oc_install().python
    except BenchError as exc:
        require(False, str(exc))
    done = subprocess.run([str(python), str(ROOT / "bench" / "lockfile.py"), str(OC_LOCK)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + "\nfix: make oc-venv (after rm -rf .venv-oc)"


def test_drift_names_each_difference():
    lock = {"transformers": "5.24.0", "torch": "2.13.0+cpu", "peft": "0.22.0"}
    have = {"transformers": "5.25.0", "torch": "2.13.0+cpu", "accelerate": "1.16.0", "pip": "23.2.1",
            "bench": "0.2.0"}
    assert drift(lock, have) == ["peft: lock 0.22.0, installed nothing",
                                 "transformers: lock 5.24.0, installed 5.25.0",
                                 "accelerate: installed 1.16.0, not in the lock"]
    assert drift(lock, lock) == []


def test_every_lock_pins_every_package_with_a_hash():
    for path in (BENCH_LOCK, OC_LOCK):
        text = path.read_text(encoding="utf-8")
        pins = read_lock(path)
        assert pins["torch"] == "2.13.0+cpu", path
        blocks = [b for b in text.split("\n") if b and not b.startswith((" ", "#"))]
        assert len(blocks) == len(pins), path  # every requirement line is an exact pin
        assert text.count("--hash=sha256:") >= len(pins), path
    assert read_lock(OC_LOCK)["opencompass"] == "0.5.4"


def test_a_run_records_the_versions_that_move_numbers_and_its_lock(tmp_path, tiny_model_dir):
    models = write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)
    suite = write_suite(tmp_path / "s.yaml", "s", ["eprstmt"], limit=3)
    store = Store(tmp_path / "bench.sqlite")
    [run] = run_suite(suite, models, None, DEMO_DATA_DIR, None, store, verbose=False)
    manifest = store.run(run.run_id)["manifest"]
    packages = manifest["packages"]
    for name in ("torch", "transformers", "tokenizers", "peft", "trl", "bitsandbytes", "lm-eval",
                 "cpu_capability"):
        assert packages[name] not in (None, "", "absent"), name
    assert packages["transformers"] == transformers.__version__
    lock = manifest["lock"]
    assert lock["file"] == "requirements/bench.lock" and lock["matches"] is True
    assert len(lock["sha256"]) == 64
    assert manifest["reuse_across_versions"] is False


def test_version_change_in_words():
    e = Elsewhere("hf/2 transformers/5.23.0 torch/2.13.0+cpu",
                  "hf/2 transformers/5.25.0 torch/2.13.0+cpu", {0: "k", 1: "k2"}, {})
    assert e.note("tnews-dev", False) == (
        "tnews-dev: 2 answers exist for transformers 5.23.0; this environment has transformers "
        "5.25.0: recomputing. --reuse-across-versions accepts them, marked as such")
    assert e.note("tnews-dev", True).startswith("tnews-dev: reusing 2 answers computed with "
                                                "transformers 5.23.0 (this environment has")


def _write_under_old_version(tmp_path, tiny_model_dir, monkeypatch) -> tuple:
    """A store whose answers were computed under transformers OLD (the version string in every
    key), as a store from an older environment is."""
    models = write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)
    suite = write_suite(tmp_path / "s.yaml", "s", ["eprstmt", "bustm"], mode="gen", limit=6)
    results = tmp_path / "results"
    store = Store(results / "bench.sqlite")
    from bench.backends import hf

    with monkeypatch.context() as m:  # the module the backend reads (transformers' lazy module
        m.setattr(hf.transformers, "__version__", OLD)  # object may differ from this file's)
        [old] = run_suite(suite, models, None, DEMO_DATA_DIR, None, store, verbose=False)
    store.close()
    assert old.model_calls > 0
    return models, suite, results, old


def _cli_run(models, suite, results, *extra):
    done = bench_cli("run", "--suite", str(suite), "--models", str(models), "--results",
                     str(results), "--data-dir", str(DEMO_DATA_DIR), *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr  # tables on stdout, notes on stderr


def test_a_cache_miss_across_versions_says_why_and_recomputes(tmp_path, tiny_model_dir, monkeypatch):
    models, suite, results, old = _write_under_old_version(tmp_path, tiny_model_dir, monkeypatch)
    said = _cli_run(models, suite, results)
    now = transformers.__version__
    for task in ("eprstmt-dev", "bustm-dev"):
        assert (f"{task}: 6 answers exist for transformers {OLD}; this environment has "
                f"transformers {now}: recomputing. --reuse-across-versions accepts them, marked "
                "as such") in said
    assert "model calls this run: 0 " not in said  # recomputed
    store = Store(results / "bench.sqlite")
    [new] = [r for r in store.finished_runs("s") if r["run_id"] != old.run_id]
    assert new["manifest"]["reuse_across_versions"] is False
    assert "reused_across_versions" not in new["manifest"]
    tasks = {t["task"]: t for t in store.run_tasks(new["run_id"])}
    assert tasks["eprstmt-dev"]["timings"]["other_version"] == {
        "backend_version": f"hf/2 transformers/{OLD} torch/{__import__('torch').__version__}",
        "n": 6, "reused": False}
    assert tasks["eprstmt-dev"]["timings"]["computed"] == 6
    old_keys = {k for k, _ in store.run_items(old.run_id, "eprstmt-dev")}
    new_keys = {k for k, _ in store.run_items(new["run_id"], "eprstmt-dev")}
    assert old_keys and not old_keys & new_keys  # filed under this environment's keys
    again = _cli_run(models, suite, results)  # now this version's answers exist: nothing said
    assert "answers exist" not in again and "model calls this run: 0 " in again


def test_reuse_across_versions_takes_the_old_answers_and_every_page_says_so(
        tmp_path, tiny_model_dir, monkeypatch):
    models, suite, results, old = _write_under_old_version(tmp_path, tiny_model_dir, monkeypatch)
    said = _cli_run(models, suite, results, "--reuse-across-versions")
    assert f"eprstmt-dev: reusing 6 answers computed with transformers {OLD}" in said
    assert "model calls this run: 0 " in said and "scores computed: 0" in said
    store = Store(results / "bench.sqlite")
    [new] = [r for r in store.finished_runs("s") if r["run_id"] != old.run_id]
    manifest = new["manifest"]
    assert manifest["reuse_across_versions"] is True
    backend = f"hf/2 transformers/{OLD} torch/{__import__('torch').__version__}"
    assert manifest["reused_across_versions"] == {
        t: {"backend_version": backend, "n": 6, "reused": True} for t in ("eprstmt-dev", "bustm-dev")}
    for task in ("eprstmt-dev", "bustm-dev"):  # the very records (and scores) of the old run
        assert store.run_items(new["run_id"], task) == store.run_items(old.run_id, task)
    assert {t["task"]: t["metrics"] for t in store.run_tasks(new["run_id"])} == {
        t.task: t.metrics for t in old.tasks}
    # nothing was filed under this environment's keys: a run without the flag recomputes
    con = sqlite3.connect(results / "bench.sqlite")
    assert con.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 12
    con.close()

    page = tmp_path / "leaderboard.html"
    done = bench_cli("leaderboard", "--suite", str(suite), "--results", str(results), "--out", str(page))
    assert done.returncode == 0, done.stderr
    html = page.read_text(encoding="utf-8")
    assert "reused across versions" in html and f"eprstmt-dev: 6 from {backend}" in html
    assert f"transformers {transformers.__version__}" in html and "requirements/bench.lock" in html
    assert re.search(r"transformers [^<]* · torch [^<]* · [A-Z0-9]+ · lock [0-9a-f]{8}</div>", html)

    report = tmp_path / "before_after.html"
    done = bench_cli("report", "--suite", str(suite), "--results", str(results), "--baseline",
                     old.run_id, "--candidate", new["run_id"], "--out", str(report))
    assert done.returncode == 0, done.stderr
    html = report.read_text(encoding="utf-8")
    assert "answers reused across versions" in html and f"bustm-dev: 6 from {backend}" in html
    assert "environment matched" in html and "cpu_capability" in html


def test_the_lock_is_the_environment_the_v1_fixture_was_written_in():
    """The migration tests' store keys hold its transformers and torch: the lock must keep them
    (a new lock that moves them re-keys every stored answer; see --reuse-across-versions)."""
    import torch

    con = sqlite3.connect(ROOT / "tests" / "fixtures" / "stores" / "v1.sqlite")
    versions = {json.loads(m)["backend"]["backend_version"] for (m,) in con.execute(
        "SELECT manifest FROM runs WHERE manifest LIKE '%backend_version%'")}
    con.close()
    assert versions == {f"hf/2 transformers/{transformers.__version__} torch/{torch.__version__}"}
