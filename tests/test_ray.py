"""`--executor ray`: the same answers, scores and metrics as a local run; a copy that dies is
restarted and its shard sent again, nothing lost or stored twice; a rerun makes zero calls."""

import sqlite3
import sys

import pytest

from bench.evaluate import runner
from bench.evaluate.runner import same_output
from bench.evaluate.suite import run_suite
from bench.scale import ray_pool
from bench.scale.ray_pool import RayPool
from bench.store import Store
from bench.tasks.loaders import DEMO_DATA_DIR
from tests.helpers import write_models


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs, started by the test (RayPool uses it, never stops it)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def small_shards(monkeypatch):
    """Shards (and local chunks) of 4 samples: several shards per task on the demo data."""
    monkeypatch.setattr(runner, "CHUNK", 4)
    monkeypatch.setattr(ray_pool, "CHUNK", 4)


@pytest.fixture
def setup(tmp_path, tiny_model_dir, tiny_model_dir_b):
    """Two models; a suite of one gen and one ppl task."""
    models = write_models(tmp_path / "models.yaml", tiny=tiny_model_dir, tiny_b=tiny_model_dir_b)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ntasks:\n  - {name: bustm, mode: gen}\n  - {name: eprstmt, mode: ppl}\n",
                     encoding="utf-8")
    return models, suite


def _records(db) -> dict:
    """cache key -> output record."""
    import json

    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT cache_key, record FROM records").fetchall()
    finally:
        con.close()
    return {k: json.loads(r) for k, r in rows}


def _run(suite, models, results, executor=None, names=None):
    return run_suite(suite, models, names, DEMO_DATA_DIR, None, Store(results / "bench.sqlite"),
                     executor=executor)


def _largest_gap(a, b) -> float:
    if isinstance(a, dict):
        return max((_largest_gap(a[k], b[k]) for k in a if k not in ("cost", "api")), default=0.0)
    if isinstance(a, list):
        return max((_largest_gap(x, y) for x, y in zip(a, b)), default=0.0)
    return abs(a - b) if isinstance(a, float) else 0.0


@pytest.mark.parametrize("copies,threads,names", [(1, None, None), (2, 1, ["tiny"])])
def test_ray_gives_the_local_numbers(cluster, small_shards, setup, tmp_path, copies, threads, names):
    """One copy with bench's thread count: the same shards and threads as the local run, so the
    records are identical. Two copies of one thread each: the same shards, other float sums:
    log-likelihoods within 1e-6, answers and metrics identical. Two models: both work at once."""
    models, suite = setup
    serial = _run(suite, models, tmp_path / "serial", names=names)
    remote = _run(suite, models, tmp_path / "ray", {"kind": "ray", "copies": copies,
                                                     "threads": threads}, names)
    assert all(r.model_calls > 0 for r in remote)  # counted from the copies' backends
    assert [r.model_calls for r in remote] == [r.model_calls for r in serial]
    for a, b in zip(serial, remote, strict=True):
        assert [(t.task, t.metrics) for t in a.tasks] == [(t.task, t.metrics) for t in b.tasks]
        assert a.average == b.average
    local, far = _records(tmp_path / "serial" / "bench.sqlite"), _records(tmp_path / "ray" / "bench.sqlite")
    assert local.keys() == far.keys()
    assert all(same_output(local[k], far[k], 1e-6) for k in local)
    gap = max(_largest_gap(local[k], far[k]) for k in local)
    if threads is None:
        assert gap == 0.0
    manifest = Store(tmp_path / "ray" / "bench.sqlite").run(remote[0].run_id)["manifest"]
    assert manifest["executor"]["kind"] == "ray" and manifest["executor"]["copies"] == copies
    keyed = tmp_path / "keyed.yaml"  # the same suite asking for Ray itself
    keyed.write_text(suite.read_text() + "executor: {kind: ray, copies: 2}\n", encoding="utf-8")
    again = _run(keyed, models, tmp_path / "ray", None, names)
    assert {r.model_calls for r in again} == {0}
    assert Store(tmp_path / "ray" / "bench.sqlite").run(again[0].run_id)["manifest"]["executor"][
        "kind"] == "ray"


def test_a_copy_killed_mid_run_is_restarted_and_nothing_is_lost_or_doubled(
        cluster, small_shards, setup, tmp_path, monkeypatch):
    """The copy SIGKILLs itself once it has answered 6 samples (inside its second shard) on its
    first life; Ray starts it again and sends that shard again."""
    models, suite = setup
    serial = _run(suite, models, tmp_path / "serial", names=["tiny"])
    committed = []  # every (run, task, sample) the driver commits: each once, none missing
    put = Store.put_records
    monkeypatch.setattr(Store, "put_records", lambda self, run_id, task, rows: (
        committed.extend((run_id, task, r[0]) for r in rows), put(self, run_id, task, rows))[1])
    killed = tmp_path / "killed.log"
    monkeypatch.setenv(ray_pool.KILL_ENV, f"6,{killed}")
    remote = _run(suite, models, tmp_path / "ray", {"kind": "ray"}, ["tiny"])
    assert len(killed.read_text().split()) == 1  # it did die, once
    assert [[t.metrics for t in r.tasks] for r in remote] == [[t.metrics for t in r.tasks] for r in serial]
    assert len(committed) == len(set(committed)) == 2 * 12  # tasks x samples
    assert all(t.timings["computed"] == 12 for r in remote for t in r.tasks)
    assert _records(tmp_path / "ray" / "bench.sqlite").keys() == \
        _records(tmp_path / "serial" / "bench.sqlite").keys()
    monkeypatch.delenv(ray_pool.KILL_ENV)
    assert _run(suite, models, tmp_path / "ray", {"kind": "ray"}, ["tiny"])[0].model_calls == 0


def test_a_copy_runs_torch_on_the_threads_it_asked_ray_for(cluster, tiny_model_dir):
    """A copy asks Ray for `threads` CPUs and runs torch on that many: 1 here, where bench's
    own policy in that process would take both CPUs of the machine."""
    from bench.config import Executor, ModelSpec

    spec = ModelSpec(name="tiny", path=str(tiny_model_dir), device="cpu", dtype="float32")
    pool = RayPool(Executor(kind="ray", threads=1))
    try:
        [copy] = pool._copies(spec)
        assert cluster.get(copy.torch_threads.remote()) == 1
    finally:
        pool.close()


def test_without_ray_one_message_names_the_extra(monkeypatch, setup, tmp_path):
    from bench.errors import BenchError

    models, suite = setup
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(BenchError, match=r"pip install 'bench\[ray\]'"):
        _run(suite, models, tmp_path / "r", {"kind": "ray"})


def test_executor_options_are_checked_before_anything_runs(tmp_path):
    from tests.helpers import bench_cli

    for args, said in ((["--executor", "slurm"], "choose local or ray"),
                       (["--executor", "local", "--ray-address", "auto"], "needs --executor ray")):
        done = bench_cli("run", "--suite", "suites/fewclue-dev-gen.yaml", *args,
                         "--results", str(tmp_path / "r"))
        assert done.returncode == 2 and said in done.stderr
        assert not (tmp_path / "r").exists()
    bad = tmp_path / "s.yaml"
    bad.write_text("name: s\ntasks: [bustm]\nexecutor: {kind: rey}\n", encoding="utf-8")
    done = bench_cli("run", "--suite", str(bad), "--results", str(tmp_path / "r"))
    assert done.returncode == 2 and "s.yaml:3: executor.kind: Input should be 'local' or 'ray'" in done.stderr
