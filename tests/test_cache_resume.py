"""The cache contract: equal keys make zero model calls; a killed run resumes losing nothing."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from bench.evaluate.suite import run_suite
from bench.store import Store
from bench.tasks.loaders import DEMO_DATA_DIR
from tests.helpers import ROOT, require_shared_data, write_models, write_suite


@pytest.fixture
def models_file(tmp_path, tiny_model_dir):
    return write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)


@pytest.mark.parametrize("mode", ["gen", "ppl"])
def test_second_run_makes_zero_model_calls(tmp_path, models_file, mode):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm", "eprstmt", "chid"], mode=mode)
    store = Store(tmp_path / "results" / "bench.sqlite")
    first = run_suite(suite, models_file, None, DEMO_DATA_DIR, None, store)[0]
    second = run_suite(suite, models_file, None, DEMO_DATA_DIR, None, store)[0]
    assert first.model_calls > 0
    assert second.model_calls == 0
    assert [t.metrics for t in first.tasks] == [t.metrics for t in second.tasks]
    assert all(t.timings["computed"] == 0 for t in second.tasks)
    assert first.average == second.average


@pytest.mark.parametrize("mode", ["gen", "ppl"])
def test_recompute_asks_again_and_checks_the_stored_answers_reproduce(tmp_path, models_file, mode):
    """`bench pipeline --from`: stored answers are computed again and compared, not reused."""
    from bench.evaluate.runner import same_output
    from bench.evaluate.suite import execute, plan_run

    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm", "eprstmt"], mode=mode)
    store = Store(tmp_path / "results" / "bench.sqlite")
    first = run_suite(suite, models_file, None, DEMO_DATA_DIR, None, store)[0]
    plan = plan_run(suite, models_file, None, DEMO_DATA_DIR, None)
    plan.recompute = True
    again = execute(plan, store)[0]
    assert again.model_calls > 0 and [t.metrics for t in again.tasks] == [t.metrics for t in first.tasks]
    for task in again.tasks:
        assert task.timings["reproduced"] == {"checked": 12, "same": 12, "differ": [], "n_differ": 0}
    # a changed answer is told apart; what it cost is not part of an answer
    assert same_output({"prediction": "A", "cost": {"wall_s": 1.0}}, {"prediction": "A", "cost": {}})
    assert not same_output({"prediction": "A"}, {"prediction": "B"})
    assert same_output({"logprobs": [-1.0]}, {"logprobs": [-1.0 + 1e-9]})
    assert not same_output({"logprobs": [-1.0]}, {"logprobs": [-1.001]})


def test_changed_task_reruns_that_task_only(tmp_path, models_file):
    data = tmp_path / "data"
    shutil.copytree(DEMO_DATA_DIR, data)
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm", "eprstmt"])
    store = Store(tmp_path / "results" / "bench.sqlite")
    run_suite(suite, models_file, None, data, None, store)
    dev = data / "fewclue" / "eprstmt" / "dev_few_all.json"
    again = {t.task: t.timings for t in run_suite(suite, models_file, None, data, None, store)[0].tasks}
    assert again["eprstmt-dev"]["computed"] == 0
    lines = dev.read_text(encoding="utf-8").split("\n")
    lines[0] = lines[0].replace('"label"', '"extra": 1, "label"')  # one record changes
    dev.write_text("\n".join(lines), encoding="utf-8")
    changed = {t.task: t.timings for t in run_suite(suite, models_file, None, data, None, store)[0].tasks}
    assert changed["bustm-dev"]["computed"] == 0
    assert changed["eprstmt-dev"]["cached"] == 0  # its data changed: the task's fingerprint did
    assert changed["eprstmt-dev"]["computed"] > 0


def _count(db, sql):
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_signal_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path, models_file, sig, code):
    """Ctrl-C / SIGTERM: a line saying what is kept, exit 128+N, the run stored as interrupted.
    SIGKILL: no word possible, but nothing committed is lost. A rerun resumes in every case."""
    data = require_shared_data()
    n = 200
    suite = write_suite(tmp_path / "s.yaml", "s", ["tnews"], limit=n)
    results = tmp_path / "results"
    db = results / "bench.sqlite"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "BENCH_CHUNK_SIZE": "4"}
    cmd = [sys.executable, "-m", "bench.cli", "run", "--suite", str(suite), "--models",
           str(models_file), "--data-dir", str(data), "--results", str(results)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if db.exists() and _count(db, "SELECT COUNT(*) FROM records") >= 4:  # first chunk committed
            break
        time.sleep(0.02)
    assert proc.poll() is None, "run finished before it could be signalled: " + proc.stderr.read()
    os.kill(proc.pid, sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    kept = _count(db, "SELECT COUNT(*) FROM records")
    assert 4 <= kept < n
    assert _count(db, "SELECT COUNT(*) FROM runs WHERE status='done'") == 0
    if sig != signal.SIGKILL:
        assert stdout == ""  # no result table: an interrupted run is never read as a pass
        assert f"interrupted by {sig.name}: model 'tiny' on suite 's': {kept} of {n} samples are " \
               f"kept in {db}" in stderr, stderr
        assert "rerun the same command to resume" in stderr
        assert _count(db, "SELECT COUNT(*) FROM runs WHERE status='interrupted'") == 1
        assert "Traceback" not in stderr

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    statuses = [s for (s,) in sqlite3.connect(db).execute("SELECT status FROM runs ORDER BY started")]
    # SIGKILL left its run `running`: the rerun saw that process gone and marked it
    assert statuses == ["killed" if sig == signal.SIGKILL else "interrupted", "done"]
    store = Store(db)
    assert store.count("records") == n  # every sample once, nothing recomputed twice
    (final,) = store.latest_runs("s")
    (task,) = store.run_tasks(final["run_id"])
    assert task["timings"]["cached"] == kept  # nothing written before the signal was lost
    assert task["timings"]["computed"] == n - kept
    ids = [r["id"] for r in store.run_records(final["run_id"], "tnews-dev")]
    assert len(ids) == len(set(ids)) == n
    assert task["metrics"]["accuracy"]["n"] == n


def test_opencompass_batched_ppl_is_keyed_by_its_batch_not_the_item(tmp_path, models_file):
    """A batch-size-4 value depends on its neighbours: the first 6 items end in a short batch
    [4, 6), the first 8 in a full one [4, 8). The second run must not reuse the first's values."""
    from bench.backends import get_backend
    from bench.backends.base import oc_batched_ce
    from bench.config import load_models

    store = Store(tmp_path / "results" / "bench.sqlite")
    runs = {}
    for limit in (6, 8):
        suite = write_suite(tmp_path / f"s{limit}.yaml", "s", ["bustm"], mode="ppl", limit=limit,
                            ppl_compat="{opencompass_batch_size: 4}")
        runs[limit] = run_suite(suite, models_file, None, DEMO_DATA_DIR, None, store)[0]
    backend = get_backend(load_models(models_file).models[0])
    for limit, run in runs.items():
        records = store.run_records(run.run_id, "bustm-dev")
        plain = [[{**c, "ce": c["ce_batch_size_1"]} for c in r["logprobs"]] for r in records]
        want = oc_batched_ce(plain, 4, backend.oc_pad_nll)
        got = [c["ce"] for r in records for c in r["logprobs"]]
        assert got == pytest.approx([v for row in want for v in row], abs=1e-6)
    # 8 batch-invariant records, shared; 6 + 8 batched ones, one per (item, batch context)
    assert store.count("records") == 8 + 6 + 8
    short, full = (store.run_records(runs[n].run_id, "bustm-dev")[4]["logprobs"] for n in (6, 8))
    assert [c["ce_batch_size_1"] for c in short] == [c["ce_batch_size_1"] for c in full]
