"""Synthetic runs in a real store for compare/gate/report tests: each side's per-item records and
score records written the way the runner writes them, with manifests that compare() accepts."""

from __future__ import annotations

from bench.metrics.stats import mean_ci
from bench.store import Store

SUITE = "syn"


def task_info(kind: str = "choice", metrics: tuple[str, ...] = ("accuracy",), **over) -> dict:
    """A task's manifest entry; `over` changes one fact (data_sha256, fingerprint, decoding...)."""
    scorer = {"choice": "accuracy", "preference": "preference", "open": "rouge"}[kind]
    info = {"fingerprint": "taskfp0000000000", "data_sha256": "d" * 64, "kind": kind,
            "signature": f"sig|{kind}", "decoding": {"mode": "gen", "max_new_tokens": 64},
            "scorers": {scorer: {"signature": f"sig|{kind}", "metrics": list(metrics)}}}
    return info | over


def put_run(store: Store, model: str, tasks: dict[str, tuple[dict, list[dict]]], *,
            fingerprint: str | None = None, suite: str = SUITE) -> str:
    """tasks: key -> (task_info, records); a record is {id, values: {metric: value}, and any of
    input/target/prediction/answer/judges}. Returns the run id."""
    fp = fingerprint or (model.encode().hex() * 8)[:64]
    manifest = {"model_fingerprint": fp, "suite": {"seed": 1234}, "command": ["bench", "run"],
                "packages": {"bench": "test"}, "tasks": {k: info for k, (info, _) in tasks.items()},
                "backend": {"backend": "hf"}}
    run = store.start_run(suite, model, manifest)
    for key, (info, records) in tasks.items():
        outputs, scores = [], []
        for r in records:
            ck = f"{model}|{key}|{r['id']}|{fp}"
            out = {"id": r["id"], "input": r.get("input", f"q{r['id']}"), "target": r.get("target", "A"),
                   "prediction": r.get("prediction", f"answer of {model}"), "answer": r.get("answer", "A")}
            outputs.append((r["id"], ck, fp, info["fingerprint"], r["id"], out))
            record = {"values": r["values"]} | ({"judges": r["judges"]} if "judges" in r else {})
            scores.append((r["id"], next(iter(info["scorers"])), f"s|{ck}", ck, "scorerfp", record))
        store.put_records(run, key, outputs)
        store.put_scores(run, key, scores)
        metrics = {m: mean_ci([r["values"][m] for r in records if r["values"].get(m) is not None])
                   for m in next(iter(info["scorers"].values()))["metrics"]}
        store.finish_task(run, key, info["fingerprint"], info["signature"], metrics, {})
    store.finish_run(run)
    return run


def binary_records(values: list[float], metric: str = "accuracy", **extra) -> list[dict]:
    return [{"id": f"s{i}", "values": {metric: float(v)}, **extra} for i, v in enumerate(values)]


def put_pairwise(store: Store, baseline: str, candidate: str, base_run: str, cand_run: str,
                 task: str, *, wins: int, ties: int, losses: int, flips: int, stale: bool = False,
                 suite: str = SUITE) -> str:
    """A `bench judge --pairwise` run over the two runs' answers of `task` (stale: over others)."""
    run = store.start_run(f"{suite}#pairwise", f"{candidate} vs {baseline}",
                          {"baseline": baseline, "candidate": candidate, "judge": "judge-x"})
    c_keys = {r["id"]: k for k, r in store.run_items(cand_run, task)}
    b_keys = {r["id"]: k for k, r in store.run_items(base_run, task)}
    rows = []
    for sid in c_keys:
        first = "other-output" if stale else c_keys[sid]
        rows.append((sid, "pairwise:candidate-first", f"p1|{run}|{sid}", first, "jfp", {"status": "ok"}))
        rows.append((sid, "pairwise:baseline-first", f"p2|{run}|{sid}", b_keys[sid], "jfp", {"status": "ok"}))
    store.put_scores(run, task, rows)
    n = wins + ties + losses
    win_rate = {"value": (wins + ties / 2) / n, "n": n, "ci_low": (wins + ties / 2) / n - 0.1,
                "ci_high": (wins + ties / 2) / n + 0.1, "wins": wins, "ties": ties, "losses": losses}
    store.finish_task(run, task, "taskfp0000000000", "pairwise|judge:judge-x|v1",
                      {"win_rate": win_rate, "flip_rate": {"rate": flips / n, "n": n,
                                                           "ci_low": 0.0, "ci_high": 1.0}}, {})
    store.finish_run(run)
    return run
