"""Where the evaluation core's speed comes from, measured (printed, never asserted).

For the nine FewCLUE tasks (dev split) on one local tiny model:
- ppl: tokens a plain full pass per candidate would push (OpenCompass's way) vs. tokens actually
  pushed over each item's token trie, vs. the item's distinct token prefixes (the lower bound),
  and the wall time;
- gen: tokens and wall time with early stop (stop once the first capital letter is out) vs.
  full-length greedy decoding, and whether the predictions agree.
Every measurement runs on a fresh store, so the cache hides nothing.

    .venv/bin/python benchmarks/core_speed.py --data-dir ../shared/data [--limit 200] [--hidden 256]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.backends import get_backend  # noqa: E402
from bench.backends.tiny import build_tiny_model  # noqa: E402
from bench.backends.trie import distinct_prefixes  # noqa: E402
from bench.config import ModelSpec, SuiteSpec  # noqa: E402
from bench.demo import demo_corpus  # noqa: E402
from bench.evaluate.runner import run_model  # noqa: E402
from bench.store import Store  # noqa: E402
from bench.tasks import load_task  # noqa: E402
from bench.tasks.loaders import resolve_data_dir  # noqa: E402

TASKS = ["bustm", "ocnli_fc", "eprstmt", "csldcp", "tnews", "iflytek", "chid", "csl", "cluewsc"]


def measure(spec: ModelSpec, mode: str, data_dir: Path, limit: int | None):
    suite = SuiteSpec(name=f"bench-{mode}", mode=mode, tasks=TASKS, limit=limit)
    tasks = [load_task(t.name, t.split, t.mode, data_dir, limit=t.limit) for t in suite.resolved_tasks()]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.sqlite")
        backend = get_backend(spec)
        t0 = time.perf_counter()
        run = run_model(spec, backend, suite, tasks, store)
        total = time.perf_counter() - t0
        preds = {t.key: [r["answer"] for r in store.run_records(run.run_id, t.key)] for t in tasks}
        store.close()
    bound = {t.key: sum(distinct_prefixes(backend._encode(list(s.ppl_prompts), "ppl"))
                        for s in t.samples) for t in tasks} if mode == "ppl" else {}
    return run, total, preds, bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "m", seed=3, hidden_size=args.hidden,
                                     num_layers=args.layers, corpus=demo_corpus())
        base = dict(name="bench-tiny", path=str(model_dir), device="cpu", dtype="float32")
        ppl_run, ppl_total, _, bound = measure(ModelSpec(**base), "ppl", data_dir, args.limit)
        gen = {}
        for early in (True, False):
            spec = ModelSpec(**base, generation={"max_new_tokens": args.max_new_tokens, "early_stop": early})
            gen[early] = measure(spec, "gen", data_dir, args.limit)[:3]
        params = get_backend(ModelSpec(**base)).info.get("params")

    print(f"data: {data_dir}  model: tiny Qwen3 hidden={args.hidden} layers={args.layers} "
          f"params={params}  limit={args.limit}  torch threads={__import__('torch').get_num_threads()}")
    print("\nppl mode (one full sequence per label; OpenCompass pushes every candidate in full;")
    print("bound = the item's distinct token prefixes, the fewest tokens any scorer can push)")
    print(f"{'task':<12}{'n':>6}{'naive tokens':>14}{'pushed':>10}{'bound':>10}{'pushed/bound':>13}"
          f"{'naive/pushed':>13}{'wall s':>9}{'items/s':>9}")
    for t in ppl_run.tasks:
        tm = t.timings
        print(f"{t.task:<12}{tm['computed']:>6}{tm['tokens_naive']:>14}{tm['tokens_pushed']:>10}"
              f"{bound[t.task]:>10}{tm['tokens_pushed'] / max(bound[t.task], 1):>13.4f}"
              f"{tm['tokens_naive'] / max(tm['tokens_pushed'], 1):>13.2f}{tm['wall_s']:>9.2f}"
              f"{tm['computed'] / max(tm['wall_s'], 1e-9):>9.1f}")
    naive = sum(t.timings["tokens_naive"] for t in ppl_run.tasks)
    pushed = sum(t.timings["tokens_pushed"] for t in ppl_run.tasks)
    lower = sum(bound.values())
    print(f"{'total':<12}{sum(t.timings['computed'] for t in ppl_run.tasks):>6}{naive:>14}{pushed:>10}"
          f"{lower:>10}{pushed / max(lower, 1):>13.4f}{naive / max(pushed, 1):>13.2f}{ppl_total:>9.2f}")

    print(f"\ngen mode (greedy, max_new_tokens={args.max_new_tokens})")
    print(f"{'task':<12}{'n':>6}{'tok early':>11}{'tok full':>10}{'wall early':>12}{'wall full':>11}{'same preds':>12}")
    (early_run, early_total, early_preds), (full_run, full_total, full_preds) = gen[True], gen[False]
    for te, tf in zip(early_run.tasks, full_run.tasks, strict=True):
        same = sum(a == b for a, b in zip(early_preds[te.task], full_preds[tf.task], strict=True))
        print(f"{te.task:<12}{te.timings['computed']:>6}{te.timings['tokens_pushed']:>11}"
              f"{tf.timings['tokens_pushed']:>10}{te.timings['wall_s']:>12.2f}{tf.timings['wall_s']:>11.2f}"
              f"{same:>7}/{len(early_preds[te.task])}")
    print(f"{'total':<12}{'':>6}{sum(t.timings['tokens_pushed'] for t in early_run.tasks):>11}"
          f"{sum(t.timings['tokens_pushed'] for t in full_run.tasks):>10}{early_total:>12.2f}{full_total:>11.2f}")


if __name__ == "__main__":
    main()
