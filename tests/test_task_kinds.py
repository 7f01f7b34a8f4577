"""Task kinds and the two record layers: outputs (what the model answered) and scores (what a
scorer made of them). A new scorer re-scores without a model call; a new model re-asks."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from bench.backends.hf import HFBackend
from bench.errors import BenchError
from bench.evaluate.runner import run_model
from bench.evaluate.suite import plan_run, run_suite
from bench.report.leaderboard import leaderboard_data
from bench.report.render import render_leaderboard
from bench.store import Store
from bench.tasks import choice
from bench.tasks.kinds import bind_scorers
from tests.fixtures.make_v1_store import DATA
from tests.helpers import ROOT, write_models

PAIRS = [
    {"prompt": "宝宝三岁，身高95厘米，穿什么尺码？", "chosen": "建议选100码，留一点活动空间。",
     "rejected": "随便买。"},
    {"prompt": "这件外套可以机洗吗？", "chosen": "可以，请翻面后用冷水轻柔机洗。",
     "rejected": "不知道，自己看标签。"},
    {"prompt": "衣服有甲醛吗？", "chosen": "我们的童装都通过了国家A类婴幼儿标准检测。",
     "rejected": "绝对零甲醛，穿了还能治湿疹。", "system": "你是童装店的客服。"},
    {"prompt": "发货要多久？", "chosen": "下单后48小时内发货。", "rejected": "看心情。"},
]


def _pairs_file(path, rows=PAIRS):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _suite(path, body: str):
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture
def models(tmp_path, tiny_model_dir, tiny_model_dir_b):
    return write_models(tmp_path / "models.yaml", tiny=tiny_model_dir, other=tiny_model_dir_b)


def test_a_new_scorer_rescores_without_asking_the_model(tmp_path, models):
    store = Store(tmp_path / "bench.sqlite")
    first = _suite(tmp_path / "a.yaml", "name: s\nmode: ppl\nlimit: 6\ntasks: [bustm, tnews]\n")
    summed = _suite(tmp_path / "b.yaml", "name: s\nmode: ppl\nlimit: 6\ntasks:\n  - {name: bustm, "
                    "scorers: [{name: accuracy, norm: sum}]}\n  - tnews\n")

    def run(suite, model="tiny"):
        [result] = run_suite(suite, models, [model], DATA, None, store, verbose=False)
        return result

    fresh = run(first)
    assert fresh.model_calls > 0 and fresh.scorer_calls == 12
    again = run(first)
    assert (again.model_calls, again.scorer_calls) == (0, 0)
    rescored = run(summed)
    assert (rescored.model_calls, rescored.scorer_calls) == (0, 6)  # bustm only, no model call
    assert rescored.tasks[0].timings["computed"] == 0
    assert store.run_tasks(rescored.run_id)[0]["signature"] == "acc|mode:ppl-oc|norm:sum"
    # the summed-log-probability winner, by hand, from the stored outputs
    for key, record in store.run_items(rescored.run_id, "bustm-dev"):
        logprobs = [c["logprob"] for c in record["logprobs"]]
        letters = "AB"
        assert record["answer"] == letters[logprobs.index(max(logprobs))]
        assert record["score"] == float(record["answer"] == record["target"])
    assert (run(summed).model_calls, run(summed).scorer_calls) == (0, 0)
    other = run(first, "other")  # another model: asked again
    assert other.model_calls > 0 and other.tasks[0].timings["computed"] == 6


def _full_pass_loglik(model_dir, context: str, continuation: str) -> float:
    """Summed log-probability of the continuation's tokens, from one plain forward pass. As in
    lm-eval, the context's trailing whitespace (the chat template's "\n") joins the continuation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spaces = len(context) - len(context.rstrip())
    context, continuation = context[:len(context) - spaces], context[len(context) - spaces:] + continuation

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), -1)
    return sum(logp[t - 1, whole[t]].item() for t in range(len(ctx), len(whole)))


def test_preference_kind_scores_continuations_and_reruns_for_free(tmp_path, models, tiny_model_dir):
    _pairs_file(tmp_path / "pairs.jsonl")
    suite = _suite(tmp_path / "pref.yaml", "name: pref\nsplit: test\ntasks:\n"
                   "  - {name: shop-pairs, kind: preference, data: pairs.jsonl}\n")
    store = Store(tmp_path / "bench.sqlite")
    [run] = run_suite(suite, models, ["tiny"], DATA, None, store, verbose=False)
    [task] = run.tasks
    assert task.task == "shop-pairs-test" and task.metrics["accuracy"]["n"] == len(PAIRS)
    assert set(task.metrics) == {"accuracy", "accuracy_per_token", "margin"}
    assert run.model_calls > 0 and run.scorer_calls == len(PAIRS)

    records = [r for _, r in store.run_items(run.run_id, "shop-pairs-test")]
    margins = []
    for pair, record in zip(PAIRS, records, strict=True):
        context = record["input"]
        assert context.endswith("<|im_start|>assistant\n") and pair["prompt"] in context
        assert ("你是童装店的客服。" in context) == ("system" in pair)
        for side in ("chosen", "rejected"):
            want = _full_pass_loglik(tiny_model_dir, context, pair[side])
            assert record[side]["logprob"] == pytest.approx(want, abs=1e-4)
            assert len(record[side]["token_logprobs"]) == record[side]["n_tokens"]
            assert math.isclose(sum(record[side]["token_logprobs"]), record[side]["logprob"],
                                abs_tol=1e-4)
        margin = record["chosen"]["logprob"] - record["rejected"]["logprob"]
        margins.append(margin)
        assert record["scores"]["preference"]["values"]["margin"] == pytest.approx(margin)
        assert record["answer"] == ("chosen" if margin > 0 else "rejected")
        assert record["prediction"] == pair[record["answer"]]
    assert task.metrics["margin"]["value"] == pytest.approx(sum(margins) / len(margins))
    assert task.metrics["accuracy"]["value"] == sum(m > 0 for m in margins) / len(margins)

    [again] = run_suite(suite, models, ["tiny"], DATA, None, store, verbose=False)
    assert (again.model_calls, again.scorer_calls) == (0, 0)
    html = render_leaderboard(leaderboard_data(store, "pref"))
    assert "accuracy_per_token" in html and "margin" in html and "pref|loglik:continuation" in html


def test_bad_preference_rows_are_named_and_counted(tmp_path, models):
    rows = [*PAIRS, {"prompt": "在吗？", "chosen": "在的。", "rejected": "在的。"},
            {"prompt": "在吗？", "chosen": "在的。"}, {"prompt": "在吗？", "chosen": 3, "rejected": "嗯"},
            {"prompt": " ", "chosen": "在的。", "rejected": "嗯"}]
    _pairs_file(tmp_path / "pairs.jsonl", rows)
    suite = _suite(tmp_path / "pref.yaml", "name: pref\nmax_bad_fraction: 0.5\ntasks:\n"
                   "  - {name: p, kind: preference, data: pairs.jsonl}\n")
    plan = plan_run(suite, models, ["tiny"], DATA, None)
    lines = plan.tasks[0].rows.lines()
    path = tmp_path / "pairs.jsonl"
    for lineno, reason in ((5, "'chosen' equals 'rejected'"), (6, "'rejected' is missing"),
                           (7, "'chosen' must be a string, not int"), (8, "'prompt' is empty")):
        assert any(f"{path}:{lineno}" in line and reason in line for line in lines), lines
    assert len(plan.tasks[0].samples) == len(PAIRS)

    strict = _suite(tmp_path / "strict.yaml", "name: pref\ntasks:\n"
                    "  - {name: p, kind: preference, data: pairs.jsonl}\n")
    with pytest.raises(BenchError, match="over max_bad_fraction"):
        plan_run(strict, models, ["tiny"], DATA, None)


@pytest.mark.parametrize("entry,message", [
    ("{name: p, kind: preference}", "strict.yaml:3: task 'p': a preference task needs `data:`"),
    ("{name: bustm, data: x.jsonl}", "`data` is for preference and open tasks"),
    ("{name: bustm, scorers: [preference]}", "task 'bustm' (choice) has no scorer 'preference'; "
                                             "choice tasks take: accuracy"),
    ("{name: bustm, scorers: [accuracy, accuracy]}", "scorer 'accuracy' is listed twice"),
    ("{name: bustm, scorers: [{name: accuracy, norm: max}]}", "norm"),
])
def test_task_entries_of_the_wrong_shape_are_refused_with_their_line(tmp_path, models, entry, message):
    suite = _suite(tmp_path / "strict.yaml", f"name: s\ntasks:\n  - {entry}\n")
    with pytest.raises(BenchError, match=None) as err:
        plan_run(suite, models, ["tiny"], DATA, None)
    assert message in str(err.value) and "strict.yaml:" in str(err.value)


def test_readme_scorer_example_runs(tmp_path, models):
    """The README's smallest scorer, executed as written, scores stored outputs without a model
    call."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Adding a task kind or a scorer", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    namespace = vars(choice).copy()
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    try:
        suite = _suite(tmp_path / "g.yaml", "name: g\nmode: gen\nlimit: 3\ntasks: [eprstmt]\n")
        store = Store(tmp_path / "bench.sqlite")
        [run] = run_suite(suite, models, ["tiny"], DATA, None, store, verbose=False)
        plan = plan_run(suite, models, ["tiny"], DATA, None)
        [task] = plan.tasks
        task.scorers = bind_scorers(task, [SimpleNamespace(name="accuracy", norm="oc-mean-ce"),
                                           SimpleNamespace(name="length")])
        backend = HFBackend(plan.models[0])
        again = run_model(plan.models[0], backend, plan.suite, [task], store)
        assert (again.model_calls, again.scorer_calls) == (0, 3)  # accuracy read, length computed
        lengths = [len(r["prediction"]) for _, r in store.run_items(again.run_id, "eprstmt-dev")]
        assert again.tasks[0].metrics["chars"]["value"] == pytest.approx(sum(lengths) / 3)
        assert run.tasks[0].metrics["accuracy"] == again.tasks[0].metrics["accuracy"]
    finally:
        choice.ChoiceKind.scorers.pop("length", None)


def test_preference_pairs_in_llama_factory_form_score_the_same(tmp_path, models):
    """The same pairs as LLaMA-Factory ranking rows, described by a dataset_info.json entry,
    give the TRL-form numbers."""
    _pairs_file(tmp_path / "pairs.jsonl")
    lf = [{"instruction": p["prompt"], "input": "", "chosen": p["chosen"], "rejected": p["rejected"],
           **({"sys": p["system"]} if "system" in p else {})} for p in PAIRS]
    (tmp_path / "ranked.json").write_text(json.dumps(lf, ensure_ascii=False, indent=1), "utf-8")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"shop": {
        "file_name": "ranked.json", "ranking": True,
        "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen",
                    "rejected": "rejected", "system": "sys"}}}), encoding="utf-8")
    suite = _suite(tmp_path / "pref.yaml", "name: pref\ntasks:\n"
                   "  - {name: trl, kind: preference, data: pairs.jsonl}\n"
                   "  - {name: lf, kind: preference, data: dataset_info.json, dataset: shop}\n")
    store = Store(tmp_path / "bench.sqlite")
    [run] = run_suite(suite, models, ["tiny"], DATA, None, store, verbose=False)
    trl, lf_task = run.tasks
    assert trl.metrics == lf_task.metrics and trl.metrics["accuracy"]["n"] == len(PAIRS)


def test_too_many_bad_pairs_stop_the_run_before_a_model_loads(tmp_path, models):
    from tests.helpers import bench_cli

    _pairs_file(tmp_path / "pairs.jsonl", [*PAIRS, {"prompt": "在吗？", "chosen": "在", "rejected": "在"}])
    suite = _suite(tmp_path / "pref.yaml", "name: pref\ntasks:\n"
                   "  - {name: p, kind: preference, data: pairs.jsonl}\n")
    proc = bench_cli("run", "--suite", str(suite), "--models", str(models),
                     "--results", str(tmp_path / "results"))
    assert proc.returncode == 2
    assert f"{tmp_path / 'pairs.jsonl'}:5" in proc.stderr and "'chosen' equals 'rejected'" in proc.stderr
    assert "over max_bad_fraction" in proc.stderr and not (tmp_path / "results").exists()
