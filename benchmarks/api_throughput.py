"""The same FewCLUE gen suite on one tiny model: the local backend, then through `transformers
serve` (started here) at several concurrencies. Printed, never asserted.

Each case starts from an empty store, so every sample is asked. Greedy, early stop on (the API
backend streams and closes once the answer is decided), the bundled demo data unless
BENCH_DATA_DIR points at real FewCLUE. Wall time is bench's per-task wall summed; API figures are
the run's own (requests/s, output tokens/s, p50/p95 latency per request, retries, errors).

    .venv/bin/python benchmarks/api_throughput.py [--limit 32] [--concurrency 1 4 16]

vLLM and lmdeploy cannot be installed on these CPU machines; with a GPU, start one with
`bench serve MODEL --engine vllm` and point --base-url/--model-id at it to measure it the same way.
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
from bench.config import ModelSpec  # noqa: E402
from bench.evaluate.suite import run_suite  # noqa: E402
from bench.store import Store  # noqa: E402
from bench.tasks.loaders import DEMO_DATA_DIR  # noqa: E402

TASKS = ["bustm", "eprstmt", "tnews", "csldcp"]


def run(tmp: Path, name: str, entry: dict, suite: Path, data: Path) -> dict:
    models = tmp / f"{name}.yaml"
    models.write_text(json.dumps({"models": [entry]}), encoding="utf-8")
    store = Store(tmp / f"{name}.sqlite")
    t0 = time.perf_counter()
    result = run_suite(suite, models, None, data, None, store)[0]
    total = time.perf_counter() - t0
    n = sum(t.timings["computed"] for t in result.tasks)
    return {"case": name, "samples": n, "wall_s": sum(t.timings["wall_s"] for t in result.tasks),
            "total_s": total, "average": result.average["value"], **(result.api or {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=32, help="samples per task")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--base-url", help="measure an already running server instead")
    ap.add_argument("--model-id", help="its model id (with --base-url)")
    args = ap.parse_args()
    data = Path(os.environ.get("BENCH_DATA_DIR") or DEMO_DATA_DIR)
    generation = {"max_new_tokens": args.max_new_tokens}
    rows = []
    with tempfile.TemporaryDirectory(prefix="api-throughput-") as tmp_name:
        tmp = Path(tmp_name)
        suite = tmp / "suite.yaml"
        suite.write_text(f"name: api-throughput\nmode: gen\nlimit: {args.limit}\n"
                         f"tasks: [{', '.join(TASKS)}]\n", encoding="utf-8")
        if args.base_url:
            for c in args.concurrency:
                rows.append(run(tmp, f"api c={c}", {
                    "name": "api", "backend": "openai", "base_url": args.base_url,
                    "model": args.model_id, "concurrency": c, "generation": generation}, suite, data))
        else:
            from bench.serve.server import serving

            model = build_tiny_model(tmp / "tiny", seed=1, hidden_size=64)
            local = {"name": "local", "path": str(model), "dtype": "float32", "device": "cpu",
                     "generation": generation}
            rows.append(run(tmp, "local", local, suite, data))
            spec = ModelSpec(name="tiny", path=str(model), dtype="float32", device="cpu")
            with serving(spec, "transformers", log_dir=tmp / "logs", timeout=300) as server:
                for c in args.concurrency:
                    entry = {**server.entry, "concurrency": c, "generation": generation}
                    rows.append(run(tmp, f"transformers serve c={c}", entry, suite, data))
    print(f"{len(TASKS)} gen tasks x {args.limit} samples, data {data}, max_new_tokens "
          f"{args.max_new_tokens}, early stop on; CPU threads: {os.cpu_count()}")
    print(f"{'case':<26}{'samples':>8}{'wall s':>9}{'req/s':>8}{'out tok/s':>10}{'p50 s':>8}"
          f"{'p95 s':>8}{'retries':>8}{'errors':>7}{'avg %':>7}")
    for r in rows:
        def f(key, fmt):
            return format(r[key], fmt) if r.get(key) is not None else "—"
        print(f"{r['case']:<26}{r['samples']:>8}{r['wall_s']:>9.2f}{f('requests_per_s', '.2f'):>8}"
              f"{f('output_tokens_per_s', '.1f'):>10}{f('latency_p50_s', '.3f'):>8}"
              f"{f('latency_p95_s', '.3f'):>8}{f('retries', 'd'):>8}{f('errors', 'd'):>7}"
              f"{100 * r['average']:>7.1f}")


if __name__ == "__main__":
    main()
