"""bench vs. lm-eval vs. OpenCompass: the same model, tasks and data, in one run (printed, never
asserted).

Tasks: FewCLUE bustm, eprstmt and cluewsc (dev_few_all), scored by log-likelihood of each label's
answer (ppl mode). These three are the FewCLUE ppl configs whose candidates share one context, so
lm-eval can run them as multiple_choice tasks built from the very same prompts (the YAMLs are
written below). The model is one local random Qwen3 (default ~25M parameters, big enough that
compute, not start-up, dominates). Every engine starts from an empty store; OpenCompass runs all
three tasks in one subprocess (its start-up is part of its cost, and is shown on its own line).

    .venv/bin/python benchmarks/compare_engines.py --data-dir ../shared/data   # needs `make oc-venv`

Selection rules differ: bench and OpenCompass pick the lowest mean cross-entropy over the whole
sequence (OpenCompass's rule), lm-eval's `acc` the highest summed log-likelihood of the answer.
Accuracies are printed for reference, not as a parity check (tests/ do that).
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
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from bench.backends import get_backend  # noqa: E402
from bench.backends.tiny import build_tiny_model  # noqa: E402
from bench.config import ModelSpec, SuiteSpec, TaskEntry  # noqa: E402
from bench.demo import demo_corpus  # noqa: E402
from bench.engines import build_engine_task  # noqa: E402
from bench.evaluate.runner import run_model  # noqa: E402
from bench.store import Store  # noqa: E402
from bench.tasks import load_task  # noqa: E402
from bench.tasks.loaders import resolve_data_dir  # noqa: E402

TASKS = ["bustm", "eprstmt", "cluewsc"]
LM_EVAL_YAML = {  # context, choices (OpenCompass's ppl template order), gold index
    "bustm": ('"语句一：“{{sentence1}}”\\n语句二：“{{sentence2}}”\\n请判断语句一和语句二说的是否是一个意思？"',
              '["两句话说的毫不相关。", "两句话说是的一个意思。"]', '"{{label}}"'),
    "eprstmt": ("'内容： \"{{sentence}}\"。情绪分类：'", '["消极。", "积极。"]',
                "\"{{0 if label == 'Negative' else 1}}\""),
    "cluewsc": ('"{{text}}\\n此处，代词“{{target.span2_text}}“被用于指代“{{target.span1_text}}“吗?"',
                '["否", "是"]', "\"{{1 if label == 'true' else 0}}\""),
}


def write_lm_eval_tasks(folder: Path, data_dir: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for task, (text, choices, target) in LM_EVAL_YAML.items():
        (folder / f"cmp_{task}.yaml").write_text(
            f"task: cmp_{task}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
            f"    validation: {data_dir / 'fewclue' / task / 'dev_few_all.json'}\n"
            "output_type: multiple_choice\nvalidation_split: validation\n"
            f"doc_to_text: {text}\ndoc_to_choice: {choices}\ndoc_to_target: {target}\n"
            'target_delimiter: "\\n"\nmetric_list:\n  - metric: acc\nmetadata:\n  version: 1.0\n',
            encoding="utf-8")


def run_engine(spec: ModelSpec, tasks: list, name: str) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.sqlite")
        backend = get_backend(spec)
        t0 = time.perf_counter()
        run = run_model(spec, backend, SuiteSpec(name=name, mode="ppl", tasks=TASKS), tasks, store)
        wall = time.perf_counter() - t0
        store.close()
    return {t.task: t for t in run.tasks}, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--skip-opencompass", action="store_true")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir).resolve()

    rows = []  # (engine, wall, items, tokens, accuracy by task)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "model", seed=5, hidden_size=args.hidden,
                                     num_layers=args.layers, corpus=demo_corpus(), chat=False)
        spec = ModelSpec(name="cmp-25m", path=str(model_dir), device="cpu", dtype="float32",
                         template="base")
        params = get_backend(spec).info["params"]

        native = [load_task(t, "dev", "ppl", data_dir) for t in TASKS]
        res, wall = run_engine(spec, native, "cmp-bench")
        naive = sum(r.timings["tokens_naive"] for r in res.values())
        rows.append(("bench", wall, res))

        write_lm_eval_tasks(Path(tmp) / "lm_eval_tasks", data_dir)
        lm_tasks = [build_engine_task(TaskEntry(name=f"cmp_{t}", engine="lm-eval",
                                                include_path=str(Path(tmp) / "lm_eval_tasks")), data_dir)
                    for t in TASKS]
        res, wall = run_engine(spec, lm_tasks, "cmp-lm-eval")
        rows.append(("lm-eval", wall, res))

        oc_startup = None
        if not args.skip_opencompass:
            from bench.engines.opencompass import OCModel, run_opencompass, spec_abbr

            oc_tasks = [build_engine_task(TaskEntry(name=f"FewCLUE_{t}_ppl", engine="opencompass",
                                                    split="dev"), data_dir) for t in TASKS]
            backend = get_backend(spec)
            t0 = time.perf_counter()
            results = run_opencompass(oc_tasks, [OCModel(spec, backend, oc_tasks[0].batch_size)])
            wall = time.perf_counter() - t0
            by_task = dict(zip([f"oc:{t}" for t in TASKS], results[spec_abbr(spec)], strict=True))
            rows.append(("opencompass", wall, by_task))
            t0 = time.perf_counter()  # start-up alone: the same subprocess on one sample
            empty = [build_engine_task(TaskEntry(name="FewCLUE_bustm_ppl", engine="opencompass",
                                                 split="dev", limit=1), data_dir)]
            run_opencompass(empty, [OCModel(spec, backend, 1)])
            oc_startup = time.perf_counter() - t0

    print(f"model: random Qwen3 hidden={args.hidden} layers={args.layers} params={params:,} "
          f"(base template), CPU threads={__import__('torch').get_num_threads()}, data: {data_dir}")
    print(f"tasks: {', '.join(f'{t}-dev' for t in TASKS)} (ppl / multiple choice)\n")
    print(f"{'engine':<12}{'items':>7}{'wall s':>9}{'items/s':>9}{'tokens pushed':>20}{'x bench wall':>14}"
          f"   accuracy % per task")
    base_wall = rows[0][1]
    for engine, wall, res in rows:
        items, tokens, accs = 0, 0, []
        for r in res.values():
            if engine == "opencompass":  # an EngineResult straight from the subprocess
                items += len(r.records)
                accs.append(100 * sum(x["score"] for x in r.records) / max(len(r.records), 1))
            else:
                items += r.timings["computed"]
                tokens += r.timings["tokens_pushed"]
                accs.append(100 * r.metrics["accuracy"]["value"])
        shown = f"{tokens:,}" if engine != "opencompass" else f">={naive:,} (est.)"
        print(f"{engine:<12}{items:>7}{wall:>9.1f}{items / wall:>9.1f}{shown:>20}{wall / base_wall:>14.2f}"
              f"   {' '.join(f'{a:.1f}' for a in accs)}")
    print(f"\nbench without prefix sharing would push {naive:,} tokens (one full pass per candidate).")
    if oc_startup is not None:
        print(f"OpenCompass start-up (same subprocess, 1 sample): {oc_startup:.1f} s")


if __name__ == "__main__":
    main()
