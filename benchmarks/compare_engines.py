"""bench vs. lm-eval vs. OpenCompass: the same model, tasks and data, per task and in total (printed,
never asserted).

Tasks: every FewCLUE ppl task whose candidates share one context and differ only in the answer
turn, so that lm-eval can run it as a multiple_choice task built from the very same prompts:
bustm, eprstmt, cluewsc, tnews (15 labels), csldcp (67) and iflytek (119). (ocnli_fc, chid and csl
change the context per candidate.) lm-eval reads each item as bench rendered it (context = the
HUMAN turn, choices = the answers, joined by "\n" as a base model sees them), from a JSON Lines
file written below. OpenCompass runs the tasks it has configs for (not csldcp and iflytek), each in
its own subprocess; its start-up, measured on one sample, is subtracted and shown on its own line.
The model is one local random Qwen3 (~25M parameters by default). Every engine starts from an empty
store.

    .venv/bin/python benchmarks/compare_engines.py --data-dir ../shared/data --limit 100   # make oc-venv

Selection rules differ: bench and OpenCompass pick the lowest mean cross-entropy over the whole
sequence (OpenCompass's rule), lm-eval's `acc` the highest summed log-likelihood of the answer.
Accuracies are printed for reference, not as a parity check (tests/ do that).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from bench.backends import get_backend  # noqa: E402
from bench.backends.base import oc_base_text  # noqa: E402
from bench.backends.tiny import build_tiny_model  # noqa: E402
from bench.config import ModelSpec, SuiteSpec, TaskEntry  # noqa: E402
from bench.demo import demo_corpus  # noqa: E402
from bench.engines import build_engine_task  # noqa: E402
from bench.evaluate.runner import run_model  # noqa: E402
from bench.store import Store  # noqa: E402
from bench.tasks import load_task  # noqa: E402
from bench.tasks.loaders import resolve_data_dir  # noqa: E402

TASKS = ["bustm", "eprstmt", "cluewsc", "tnews", "csldcp", "iflytek"]
OC_TASKS = {"bustm", "eprstmt", "cluewsc", "tnews"}  # OpenCompass ships no csldcp/iflytek config


def write_lm_eval_task(folder: Path, task) -> str:
    """One context + choices per item, as bench renders it, for lm-eval's multiple_choice."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"cmp_{task.name}"
    with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as f:
        for s in task.samples:
            contexts = {p[:-1] for p in s.ppl_prompts}
            if len(contexts) != 1 or any(p[-1].role != "BOT" for p in s.ppl_prompts):
                raise SystemExit(f"{task.name}: candidates do not share one context")
            context = oc_base_text(next(iter(contexts)))
            f.write(json.dumps({"context": context, "choices": [p[-1].prompt for p in s.ppl_prompts],
                                "gold": s.target}, ensure_ascii=False) + "\n")
    (folder / f"{name}.yaml").write_text(
        f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    validation: {folder / f'{name}.jsonl'}\n"
        "output_type: multiple_choice\nvalidation_split: validation\n"
        'doc_to_text: "{{context}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: "{{gold}}"\n'
        'target_delimiter: "\\n"\nmetric_list:\n  - metric: acc\nmetadata:\n  version: 1.0\n',
        encoding="utf-8")
    return name


def run_engine(spec: ModelSpec, tasks: list, name: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.sqlite")
        run = run_model(spec, get_backend(spec), SuiteSpec(name=name, mode="ppl", tasks=TASKS),
                        tasks, store)
        store.close()
    return {t.task: t for t in run.tasks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=100, help="first N dev items per task")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--skip-opencompass", action="store_true")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir).resolve()

    walls: dict[str, dict[str, float]] = {"bench": {}, "lm-eval": {}, "opencompass": {}}
    tokens: dict[str, dict[str, int]] = {"bench": {}, "lm-eval": {}}
    accs: dict[str, dict[str, float]] = {"bench": {}, "lm-eval": {}, "opencompass": {}}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "model", seed=5, hidden_size=args.hidden,
                                     num_layers=args.layers, corpus=demo_corpus(), chat=False)
        spec = ModelSpec(name="cmp-25m", path=str(model_dir), device="cpu", dtype="float32",
                         template="base")
        params = get_backend(spec).info["params"]

        native = [load_task(t, "dev", "ppl", data_dir, limit=args.limit) for t in TASKS]
        n_items = {t.name: len(t.samples) for t in native}
        res = run_engine(spec, native, "cmp-bench")
        for t in TASKS:
            r = res[f"{t}-dev"]
            walls["bench"][t], tokens["bench"][t] = r.timings["wall_s"], r.timings["tokens_pushed"]
            accs["bench"][t] = 100 * r.metrics["accuracy"]["value"]

        folder = Path(tmp) / "lm_eval_tasks"
        names = [write_lm_eval_task(folder, task) for task in native]
        lm_tasks = [build_engine_task(TaskEntry(name=n, engine="lm-eval", include_path=str(folder)),
                                      data_dir) for n in names]
        res = run_engine(spec, lm_tasks, "cmp-lm-eval")
        for t, n in zip(TASKS, names, strict=True):
            r = res[f"lm-eval:{n}"]
            walls["lm-eval"][t], tokens["lm-eval"][t] = r.timings["wall_s"], r.timings["tokens_pushed"]
            accs["lm-eval"][t] = 100 * r.metrics["accuracy"]["value"]

        oc_startup = None
        if not args.skip_opencompass:
            from bench.engines.opencompass import OCModel, run_opencompass, spec_abbr

            backend = get_backend(spec)

            def oc_run(task: str, limit: int) -> tuple[float, list]:
                entry = TaskEntry(name=f"FewCLUE_{task}_ppl", engine="opencompass", split="dev",
                                  limit=limit)
                oc_task = build_engine_task(entry, data_dir)
                t0 = time.perf_counter()
                out = run_opencompass([oc_task], [OCModel(spec, backend, oc_task.batch_size)])
                return time.perf_counter() - t0, out[spec_abbr(spec)][0].records

            oc_startup = min(oc_run("bustm", 1)[0] for _ in range(2))  # the first one is colder
            for t in TASKS:
                if t in OC_TASKS:
                    wall, records = oc_run(t, args.limit)
                    walls["opencompass"][t] = max(wall - oc_startup, 0.0)
                    accs["opencompass"][t] = 100 * sum(x["score"] for x in records) / max(len(records), 1)

    print(f"model: random Qwen3 hidden={args.hidden} layers={args.layers} params={params:,} "
          f"(base template), CPU threads={__import__('torch').get_num_threads()}, data: {data_dir}, "
          f"first {args.limit} dev items per task (ppl / multiple choice)\n")
    print(f"{'task':<9}{'items':>6}{'labels':>7}{'bench s':>9}{'lm-eval s':>10}{'OC s':>8}"
          f"{'lm/bench':>9}{'OC/bench':>9}{'bench tok':>11}{'lm-eval tok':>12}{'tok/s bench':>12}"
          f"{'tok/s lm':>10}   acc % bench/lm-eval/OC")
    labels = {t.name: len(t.samples[0].ppl_prompts) for t in native}
    for t in TASKS:
        b, lm, oc = walls["bench"][t], walls["lm-eval"][t], walls["opencompass"].get(t)
        tb, tl = tokens["bench"][t], tokens["lm-eval"][t]
        acc = "/".join(f"{accs[e][t]:.1f}" if t in accs[e] else "—" for e in accs)
        print(f"{t:<9}{n_items[t]:>6}{labels[t]:>7}{b:>9.1f}{lm:>10.1f}"
              f"{(f'{oc:.1f}' if oc is not None else '—'):>8}{lm / b:>9.2f}"
              f"{(f'{oc / b:.2f}' if oc is not None else '—'):>9}{tb:>11,}{tl:>12,}{tb / b:>12,.0f}"
              f"{tl / lm:>10,.0f}   {acc}")
    tb, tl = sum(walls["bench"].values()), sum(walls["lm-eval"].values())
    oc_tasks = list(walls["opencompass"])
    oc_total = f"{sum(walls['opencompass'].values()):.1f}" if oc_tasks else "—"
    print(f"{'total':<9}{sum(n_items.values()):>6}{'':>7}{tb:>9.1f}{tl:>10.1f}{oc_total:>8}{tl / tb:>9.2f}")
    if oc_tasks:
        ob = sum(walls["bench"][t] for t in oc_tasks)
        print(f"OpenCompass / bench over {', '.join(oc_tasks)}: "
              f"{sum(walls['opencompass'].values()) / ob:.2f}x (start-up {oc_startup:.1f} s per "
              "subprocess, subtracted)")
    heavy = [t for t in ("tnews", "csldcp", "iflytek") if t in walls["bench"]]
    print(f"lm-eval / bench over {', '.join(heavy)}: "
          f"{sum(walls['lm-eval'][t] for t in heavy) / sum(walls['bench'][t] for t in heavy):.2f}x")


if __name__ == "__main__":
    main()
