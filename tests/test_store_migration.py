"""Store schema upgrades, on a real version-1 store (tests/fixtures/stores/v1.sqlite, written by
bench 0.1.0 with tests/fixtures/make_v1_store.py): read after the upgrade with every value as it
was, reused by a rerun with zero model and zero scorer calls; a newer store is refused."""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.evaluate.suite import run_suite
from bench.report.leaderboard import leaderboard_data
from bench.store import SCHEMA_VERSION, Store
from tests.fixtures.make_v1_store import DATA, SUITES

V1 = Path(__file__).parent / "fixtures" / "stores" / "v1.sqlite"


def _rows(path: Path, sql: str) -> list:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def v1_copy(tmp_path) -> Path:
    path = tmp_path / "results" / "bench.sqlite"
    path.parent.mkdir()
    shutil.copy(V1, path)
    return path


def test_v1_store_is_upgraded_in_place_after_a_backup(v1_copy):
    before = {t: _rows(v1_copy, f"SELECT * FROM {t} ORDER BY rowid")
              for t in ("records", "runs", "run_tasks", "run_items")}
    assert _rows(v1_copy, "SELECT value FROM meta WHERE key='schema_version'") == [("1",)]

    store = Store(v1_copy)
    backup = v1_copy.with_name("bench.sqlite.v1.bak")
    assert store.upgraded and str(backup) in store.upgraded and "schema 1 to 2" in store.upgraded
    assert _rows(backup, "SELECT value FROM meta WHERE key='schema_version'") == [("1",)]
    assert _rows(backup, "SELECT * FROM records ORDER BY rowid") == before["records"]
    store.close()
    for table, rows in before.items():  # every version-1 byte is still there
        assert _rows(v1_copy, f"SELECT * FROM {table} ORDER BY rowid") == rows, table
    assert _rows(v1_copy, "SELECT value FROM meta WHERE key='schema_version'") == [
        (str(SCHEMA_VERSION),)]

    store = Store(v1_copy)  # opened again: nothing more to do
    assert store.upgraded is None
    # each scored sample of each run has its score record, equal to the v1 record's own
    assert store.count("run_scores") == store.count("run_items") == len(before["run_items"])
    for run_id, _suite, *_ in before["runs"]:
        for task in [t["task"] for t in store.run_tasks(run_id)]:
            for key, record in store.run_items(run_id, task):
                v1 = json.loads(_rows(v1_copy, f"SELECT record FROM records WHERE cache_key='{key}'")[0][0])
                assert (record["score"], record["answer"], record["prediction"]) == (
                    v1["score"], v1["answer"], v1["prediction"])
                assert list(record["scores"]) == (["engine"] if ":" in task else ["accuracy"])


def test_v1_runs_are_read_by_reports_after_the_upgrade(v1_copy):
    store = Store(v1_copy)
    data = leaderboard_data(store, "v1-ppl")
    v1_metrics = {t: json.loads(m)["accuracy"] for t, m in _rows(
        v1_copy, "SELECT task, metrics FROM run_tasks WHERE run_id LIKE '%80be2075'")}
    assert data["models"][0]["scores"] == v1_metrics
    assert all(row["answer"] for rows in data["examples"].values() for row in rows)


def test_rerun_on_an_upgraded_v1_store_asks_nothing(v1_copy, tiny_model_dir, tmp_path):
    """The same model (built byte-identical), data and suites as the fixture: every output and
    every score is found; the numbers equal version 1's. A new scorer re-scores, asking the model
    nothing."""
    models = tmp_path / "models.yaml"
    models.write_text(f"models:\n  - name: tiny\n    path: {tiny_model_dir}\n    device: cpu\n"
                      "    dtype: float32\n", encoding="utf-8")
    store = Store(v1_copy)
    v1 = {suite: {t: json.loads(m)["accuracy"] for t, m in _rows(
        v1_copy, "SELECT t.task, t.metrics FROM run_tasks t JOIN runs r USING (run_id) "
        f"WHERE r.suite='{suite}'")} for suite in SUITES}
    for name, body in SUITES.items():
        if name == "v1-engine":
            continue  # lm-eval: tests/test_engine_lm_eval.py covers its cache
        suite = tmp_path / f"{name}.yaml"
        suite.write_text(f"name: {name}\n{body}", encoding="utf-8")
        [run] = run_suite(suite, models, None, DATA, None, store, verbose=False)
        assert (run.model_calls, run.scorer_calls) == (0, 0), name
        assert {t.task: t.metrics["accuracy"] for t in run.tasks} == v1[name]

    summed = tmp_path / "summed.yaml"
    summed.write_text("name: v1-ppl\nmode: ppl\nlimit: 5\ntasks:\n  - {name: bustm, scorers: "
                      "[{name: accuracy, norm: sum}]}\n", encoding="utf-8")
    [run] = run_suite(summed, models, None, DATA, None, store, verbose=False)
    assert run.model_calls == 0 and run.scorer_calls == 5
    assert run.tasks[0].metrics["accuracy"]["n"] == 5


def test_a_store_from_a_newer_bench_is_refused(tmp_path):
    path = tmp_path / "bench.sqlite"
    Store(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.execute("UPDATE meta SET value='9.0.0' WHERE key='bench_version'")
    con.commit()
    con.close()
    with pytest.raises(BenchError) as err:
        Store(path)
    msg = str(err.value)
    assert "bench 9.0.0 with store schema 99" in msg and f"reads schema {SCHEMA_VERSION}" in msg
    assert "pip install -U bench" in msg
    assert _rows(path, "SELECT value FROM meta WHERE key='schema_version'") == [("99",)]


def test_fresh_run_reproduces_every_v1_value(tiny_model_dir, tmp_path):
    """The golden store: the current code, run afresh on the fixture's model, data and suites,
    writes every version-1 output under the same key with the same values (cost aside: it is
    wall time), and scores them as version 1 did. Text, answers and counts are equal; numbers
    within 1e-6 relative (`same_output`, as `--from` and the Ray executor check reproduction):
    float32 log-likelihood sums round differently on another CPU's kernel path (on this
    fixture, 25 of 37 records differ in the 8th digit between the machine that wrote it and an
    Ice Lake AVX512 one, none beyond 1e-6)."""
    from bench.evaluate.runner import same_output

    models = tmp_path / "models.yaml"
    models.write_text(f"models:\n  - name: tiny\n    path: {tiny_model_dir}\n    device: cpu\n"
                      "    dtype: float32\n", encoding="utf-8")
    include = tmp_path / "lm_eval_tasks"
    include.mkdir()
    task_yaml = (Path(__file__).parent / "fixtures/lm_eval_tasks/bench_bustm.yaml").read_text("utf-8")
    (include / "bench_bustm.yaml").write_text(task_yaml.replace("bench/tasks/demo_data", str(DATA)),
                                              encoding="utf-8")
    store = Store(tmp_path / "fresh.sqlite")
    for name, body in SUITES.items():
        suite = tmp_path / f"{name}.yaml"
        suite.write_text(f"name: {name}\n" + body.replace("INCLUDE", str(include)), encoding="utf-8")
        run_suite(suite, models, None, DATA, None, store, verbose=False)
    v1 = {k: json.loads(r) for k, r in _rows(V1, "SELECT cache_key, record FROM records")}
    fresh = store.get_records(v1)
    assert set(fresh) == set(v1)  # same keys: model, task, sample, decoding and backend ids held
    for key, old in v1.items():
        new = fresh[key]
        shared = set(new) - {"cost"}
        assert shared <= set(old) and same_output({f: new[f] for f in shared},
                                                  {f: old[f] for f in shared}, tol=1e-6), key
        if "keys" in old:  # an engine task's index record
            continue
        # the v1 record's score fields, now in the score layer
        [(record,)] = _rows(tmp_path / "fresh.sqlite", "SELECT s.record FROM scores s WHERE "
                            f"s.cache_key='{key}'") or [(None,)]
        if record is not None:
            score = json.loads(record)
            assert score["values"]["accuracy"] == old["score"] and score["answer"] == old["answer"]
