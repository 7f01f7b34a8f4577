"""Serial vs Ray: the same suite (several tiny models x FewCLUE tasks) run locally, then through
`--executor ray` on a local cluster of this machine's CPUs with W one-thread copies. Printed, never
asserted. Each case starts from an empty store, so every sample is asked.

Also measured: the driver's commit rate, the ceiling of any number of workers (every shard's
records are committed by the driver, one SQLite transaction per shard): records/s of the run's
own commits, and of a synthetic burst of shards of CHUNK records shaped like ppl outputs.

    .venv/bin/python benchmarks/scale.py [--models 4] [--limit 48] [--workers 2]
    BENCH_DATA_DIR=../shared/data .venv/bin/python benchmarks/scale.py   # real FewCLUE dev
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.backends.tiny import build_tiny_model  # noqa: E402
from bench.evaluate import runner  # noqa: E402
from bench.evaluate.suite import run_suite  # noqa: E402
from bench.store import Store  # noqa: E402
from bench.tasks.loaders import DEMO_DATA_DIR  # noqa: E402

TASKS = ["bustm", "eprstmt", "tnews", "csldcp", "ocnli_fc", "chid"]


class CommitClock:
    """Store.put_records timed: how long the driver spends committing, and how many records."""

    def __init__(self):
        self.seconds, self.records, self._put = 0.0, 0, Store.put_records

    def __enter__(self):
        clock = self

        def put(store, run_id, task, rows):
            t0 = time.perf_counter()
            clock._put(store, run_id, task, rows)
            clock.seconds += time.perf_counter() - t0
            clock.records += len(rows)

        Store.put_records = put
        return self

    def __exit__(self, *exc):
        Store.put_records = self._put


def case(tmp: Path, name: str, suite: Path, models: Path, data: Path, executor: dict | None) -> dict:
    store = Store(tmp / f"{name}.sqlite")
    with CommitClock() as clock:
        t0 = time.perf_counter()
        runs = run_suite(suite, models, None, data, None, store, executor=executor)
        wall = time.perf_counter() - t0
    samples = sum(t.timings["computed"] for r in runs for t in r.tasks)
    return {"case": name, "samples": samples, "wall_s": wall, "commit_s": clock.seconds,
            "records": clock.records, "averages": [round(r.average["value"], 6) for r in runs]}


def commit_burst(tmp: Path, n: int = 4096) -> float:
    """Records/s the driver commits in shards of CHUNK, each record ~ a ppl output."""
    store = Store(tmp / "burst.sqlite")
    run_id = store.start_run("burst", "m", {})
    record = {"id": "L1", "prediction": 1, "logprobs": [{"ce": 1.234567, "tokens": 12}] * 4,
              "cost": {"wall_s": 0.01, "tokens_pushed": 100}}
    t0 = time.perf_counter()
    for start in range(0, n, runner.CHUNK):
        store.put_records(run_id, "t", [(f"L{i}", f"key{i}", "m", "t", f"h{i}", record)
                                        for i in range(start, min(n, start + runner.CHUNK))])
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=4, help="tiny models (different seeds)")
    ap.add_argument("--limit", type=int, default=48, help="samples per task")
    ap.add_argument("--workers", type=int, default=2, help="Ray copies (one thread each)")
    ap.add_argument("--mode", default="ppl", choices=["ppl", "gen"])
    args = ap.parse_args()
    data = Path(os.environ.get("BENCH_DATA_DIR") or DEMO_DATA_DIR)
    import ray

    with tempfile.TemporaryDirectory(prefix="scale-") as tmp_name:
        tmp = Path(tmp_name)
        entries = [{"name": f"tiny{i}", "path": str(build_tiny_model(tmp / f"tiny{i}", seed=i,
                    hidden_size=128, num_layers=4)), "dtype": "float32", "device": "cpu"}
                   for i in range(args.models)]
        models = tmp / "models.yaml"
        models.write_text(json.dumps({"models": entries}), encoding="utf-8")
        suite = tmp / "suite.yaml"
        suite.write_text(f"name: scale\nmode: {args.mode}\nlimit: {args.limit}\n"
                         f"tasks: [{', '.join(TASKS)}]\n", encoding="utf-8")
        serial = case(tmp, "serial", suite, models, data, None)
        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        start = time.perf_counter() - t0
        remote = case(tmp, f"ray, {args.workers} workers", suite, models, data,
                      {"kind": "ray", "copies": 1, "threads": max(1, os.cpu_count() // args.workers)})
        ray.shutdown()
        burst = commit_burst(tmp)
    same = serial["averages"] == remote["averages"]
    print(f"{args.models} tiny models (hidden 128, 4 layers) x {len(TASKS)} {args.mode} tasks x "
          f"{args.limit} samples; data {data}; {os.cpu_count()} CPUs; shards of {runner.CHUNK}")
    print(f"{'case':<20}{'samples':>8}{'wall s':>9}{'samples/s':>10}{'commit s':>10}{'records/s committed':>21}")
    for r in (serial, remote):
        print(f"{r['case']:<20}{r['samples']:>8}{r['wall_s']:>9.1f}{r['samples'] / r['wall_s']:>10.1f}"
              f"{r['commit_s']:>10.2f}{r['records'] / r['commit_s']:>21.0f}")
    print(f"ratio serial/ray: {serial['wall_s'] / remote['wall_s']:.2f}x (Ray cluster start, not "
          f"counted: {start:.1f} s); suite averages identical: {same}")
    print(f"driver commit ceiling (synthetic burst, shards of {runner.CHUNK}): {burst:.0f} records/s")


if __name__ == "__main__":
    main()
