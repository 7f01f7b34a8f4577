"""Store and statistics without a model."""

import multiprocessing as mp

import numpy as np

from bench.metrics.stats import mean_ci, suite_average
from bench.store import Store


def _writer(path, worker, n):
    store = Store(path)
    run = store.start_run("s", f"m{worker}", {})
    for i in range(n):
        # both workers write the same keys and some of their own
        rows = [(f"L{i}", f"shared-{i}", "m", "t", "h", {"w": worker}),
                (f"X{i}", f"own-{worker}-{i}", "m", "t", "h", {"w": worker})]
        store.put_records(run, "task", rows)
    store.finish_run(run)


def test_two_processes_writing_at_once_corrupt_nothing(tmp_path):
    path = tmp_path / "bench.sqlite"
    Store(path).close()
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, w, 200)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = Store(path)
    assert store.count("records") == 200 + 2 * 200
    assert store.count("runs") == 2
    assert store.count("run_items") == 2 * 400
    assert [r["model"] for r in store.latest_runs("s")] and len(store.latest_runs("s")) == 2


def test_records_roundtrip_unicode_and_latest_run(tmp_path):
    store = Store(tmp_path / "b.sqlite")
    run = store.start_run("s", "m", {"a": 1})
    rec = {"id": "L1", "prediction": "答：A\u2028<script>", "score": 1.0}
    store.put_records(run, "bustm-dev", [("L1", "k1", "m", "t", "h", rec)])
    store.finish_task(run, "bustm-dev", "t", "sig", {"accuracy": {"value": 1.0}}, {"wall_s": 0})
    assert store.latest_runs("s") == []  # unfinished runs never reach a report
    store.finish_run(run, manifest_update={"b": 2})
    latest = store.latest_runs("s")
    assert latest[0]["manifest"] == {"a": 1, "b": 2}
    assert store.run_records(run, "bustm-dev") == [rec]
    assert store.get_records(["k1", "nope"]) == {"k1": rec}


def test_accuracy_ci_is_seeded_and_brackets_value():
    scores = [1, 0, 1, 1, 0, 1, 0, 1] * 20
    a, b = mean_ci(scores, seed=7), mean_ci(scores, seed=7)
    assert a == b
    assert a["n"] == 160 and a["value"] == np.mean(scores)
    assert a["ci_low"] < a["value"] < a["ci_high"]
    # binomial standard error ~3.8 points at n=160: the 95% CI is about ±7.5 points
    assert 0.12 < a["ci_high"] - a["ci_low"] < 0.18


def test_suite_average_is_macro_with_stratified_ci():
    avg = suite_average({"a": [1] * 10, "b": [0] * 30}, seed=1)
    assert avg["value"] == 0.5 and avg["n"] == 2 and avg["n_samples"] == 40
    assert avg["ci_low"] == avg["ci_high"] == 0.5  # no variance inside either task
    assert mean_ci([])["value"] is None


def test_intervals_do_not_depend_on_the_order_scores_are_read_in():
    rng = np.random.default_rng(0)
    a, b = list(rng.integers(0, 2, 160)), list(rng.integers(0, 2, 32))
    shuffled_a, shuffled_b = list(rng.permutation(a)), list(rng.permutation(b))
    assert mean_ci(a, seed=3) == mean_ci(shuffled_a, seed=3)
    assert suite_average({"x": a, "y": b}, seed=3) == suite_average({"y": shuffled_b, "x": shuffled_a}, seed=3)
