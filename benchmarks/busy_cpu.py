"""A run alone vs. the same run beside one CPU-bound neighbour (printed, never asserted).

Each measurement is a fresh `bench run` (its own results folder, so nothing is cached) of a gen and
a ppl suite on one tiny local model. The neighbour is a Python process spinning on one core,
started before the run and stopped after it. Under each thread setting given (`--policies`), it
prints wall time alone, beside the neighbour, and the ratio; goal: at most 3x.

    .venv/bin/python benchmarks/busy_cpu.py --data-dir ../shared/data [--limit 60]
    .venv/bin/python benchmarks/busy_cpu.py --policies bench,OMP_WAIT_POLICY=ACTIVE
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def bench_run(suite: Path, models: Path, data_dir: str, env: dict) -> float:
    with tempfile.TemporaryDirectory() as results:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bench.cli", "run", "--suite", str(suite), "--models",
                        str(models), "--data-dir", data_dir, "--results", results],
                       env=env, check=True, capture_output=True, cwd=ROOT)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--policies", default="bench,OMP_WAIT_POLICY=ACTIVE,BENCH_THREADS=1",
                    help="comma-separated: 'bench' (its own policy) or ENV=VALUE settings to compare")
    args = ap.parse_args()

    from bench.backends.tiny import build_tiny_model
    from bench.demo import demo_corpus

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_tiny_model(tmp / "m", seed=3, hidden_size=args.hidden, num_layers=4,
                                 corpus=demo_corpus())
        models = tmp / "models.yaml"
        models.write_text(f"models:\n  - {{name: m, path: {model}, device: cpu, dtype: float32}}\n")
        suites = {}
        for mode in ("gen", "ppl"):
            suites[mode] = tmp / f"{mode}.yaml"
            suites[mode].write_text(f"name: busy-{mode}\nmode: {mode}\nlimit: {args.limit}\n"
                                    "tasks: [bustm, eprstmt, tnews]\n")
        print(f"cores available: {len(os.sched_getaffinity(0))}  model: hidden={args.hidden} "
              f"layers=4  tasks: bustm, eprstmt, tnews x {args.limit}")
        print(f"{'setting':<28}{'mode':<6}{'alone s':>9}{'busy s':>9}{'ratio':>8}")
        for policy in args.policies.split(","):
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            if "=" in policy:
                key, value = policy.split("=", 1)
                env[key] = value
            for mode, suite in suites.items():
                bench_run(suite, models, args.data_dir, env)  # warm the file cache
                alone = bench_run(suite, models, args.data_dir, env)
                spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                try:
                    time.sleep(0.5)
                    busy = bench_run(suite, models, args.data_dir, env)
                finally:
                    spinner.kill()
                    spinner.wait()
                print(f"{policy:<28}{mode:<6}{alone:>9.1f}{busy:>9.1f}{busy / alone:>8.2f}")


if __name__ == "__main__":
    main()
