"""`bench compare`: a candidate's finished run of a suite against a baseline's, task by task and
metric by metric, on the same items.

Per (task, metric): both means, the paired difference (candidate - baseline) with a seeded paired
bootstrap 95% CI, a paired test (bench/metrics/paired.py: McNemar exact for 0/1 metrics, a
permutation test otherwise), the smallest effect n items could detect, and a Holm-adjusted p over
the family of tests (by default each task's headline metric, plus the pairwise judge's win rate).
Pairwise verdicts (`bench judge --pairwise`) add a row per task: win rate, sign test on wins vs
losses, the judge's flip rate.

Two runs are compared only on tasks whose fingerprints, data, decoding, metric signatures and items
match; anything else is refused with a message naming what differs. Every metric here is
higher-is-better (accuracy, ROUGE, rule pass, judge scores, preference margin).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from bench.compare.sides import resolve_side, side_view
from bench.errors import BenchError
from bench.metrics.paired import (difference_sd, holm, is_binary, mcnemar_exact,
                                  min_detectable_effect, permutation_p, sign_test)
from bench.metrics.stats import headline, mean_ci, paired_difference
from bench.store import Store

ALPHA, POWER = 0.05, 0.8


def compare(store: Store, suite: str, baseline: str, candidate: str, *, alpha: float = ALPHA,
            power: float = POWER, family: Callable[[dict], bool] | None = None) -> dict:
    """The comparison (see the module doc). `family(row)` picks the rows Holm corrects over
    (default: headline metrics and pairwise win rates); rows outside it get p_holm None."""
    base = resolve_side(store, suite, baseline, "baseline")
    cand = resolve_side(store, suite, candidate, "candidate")
    seed = int((cand["manifest"].get("suite") or {}).get("seed") or 1234)
    b_tasks = {r["task"]: r for r in store.run_tasks(base["run_id"])}
    c_tasks = {r["task"]: r for r in store.run_tasks(cand["run_id"])}
    order = list(cand["manifest"].get("tasks", {}))  # the suite's order
    common = sorted((t for t in b_tasks if t in c_tasks),
                    key=lambda t: order.index(t) if t in order else len(order))
    skipped = ([{"task": t, "reason": "only in the baseline's run"} for t in b_tasks if t not in c_tasks]
               + [{"task": t, "reason": "only in the candidate's run"} for t in c_tasks if t not in b_tasks])
    problems, tasks = [], []
    for key in common:
        info_b = base["manifest"].get("tasks", {}).get(key, {})
        info_c = cand["manifest"].get("tasks", {}).get(key, {})
        diff = task_differences(b_tasks[key], c_tasks[key], info_b, info_c)
        items = None if diff else _paired_items(store, key, base["run_id"], cand["run_id"])
        if isinstance(items, str):
            diff = [items]
        if diff:
            problems.append(f"{key}: " + "; ".join(diff))
            continue
        tasks.append({"task": key, "kind": info_c.get("kind", "choice"),
                      "signature": c_tasks[key]["signature"],
                      "headline": headline(c_tasks[key]["metrics"])[0], "items": items,
                      "metrics": [m for m in c_tasks[key]["metrics"] if m != "engine"]})
    if problems:
        raise BenchError(f"cannot compare {base['model']} (run {base['run_id']}) with "
                         f"{cand['model']} (run {cand['run_id']}) on suite '{suite}': "
                         + " | ".join(problems) + ". Rerun both sides with the same suite file "
                         "and data (bench run reuses what is unchanged)")
    rows = []
    for task in tasks:
        for metric in task["metrics"]:
            pairs = [(it["candidate"]["values"].get(metric), it["baseline"]["values"].get(metric))
                     for it in task["items"]]
            pairs = [(c, b) for c, b in pairs if _num(c) and _num(b)]
            if pairs:
                rows.append(metric_row(task, metric, pairs, seed=seed, alpha=alpha, power=power))
    rows += pairwise_rows(store, suite, base, cand, [t["task"] for t in tasks], alpha, power)
    return {"suite": suite, "alpha": alpha, "power": power, "seed": seed,
            "baseline": side_view(base), "candidate": side_view(cand),
            "rows": rows, "tasks": tasks, "skipped": skipped,
            "family_size": apply_holm(rows, family or (lambda r: r["headline"]), alpha)}


def apply_holm(rows: list[dict], in_family: Callable[[dict], bool], alpha: float) -> int:
    """Set p_holm (None outside the family) and `significant` on each row; the family's size."""
    chosen = [r for r in rows if in_family(r)]
    adjusted = dict(zip(map(id, chosen), holm([r["p"] for r in chosen])))
    for r in rows:
        r["p_holm"] = adjusted.get(id(r))
        r["significant"] = r["p_holm"] is not None and r["p_holm"] < alpha
    return len(chosen)


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def task_differences(row_b: dict, row_c: dict, info_b: dict, info_c: dict) -> list[str]:
    """What differs between two runs of one task, in words (empty: comparable)."""
    out = []
    if info_b.get("data_sha256") != info_c.get("data_sha256"):
        out.append(f"data file differs (sha256 {str(info_b.get('data_sha256'))[:12]} vs "
                   f"{str(info_c.get('data_sha256'))[:12]})")
    elif row_b["task_fp"] != row_c["task_fp"]:
        out.append(f"prompt template, label mapping or task settings differ (task fingerprint "
                   f"{row_b['task_fp'][:12]} vs {row_c['task_fp'][:12]})")
    db, dc = info_b.get("decoding") or {}, info_c.get("decoding") or {}
    if db != dc:
        keys = sorted(k for k in set(db) | set(dc) if db.get(k) != dc.get(k))
        out.append("decoding differs (" + ", ".join(f"{k}: {db.get(k)!r} vs {dc.get(k)!r}"
                                                     for k in keys) + ")")
    sb = {n: s.get("signature") for n, s in (info_b.get("scorers") or {}).items()}
    sc = {n: s.get("signature") for n, s in (info_c.get("scorers") or {}).items()}
    if row_b["signature"] != row_c["signature"] or sb != sc:
        pairs = [(row_b["signature"], row_c["signature"])] + [
            (sb.get(n), sc.get(n)) for n in sorted(set(sb) | set(sc)) if n in sb and n in sc]
        named = next(((x, y) for x, y in pairs if x != y), None)
        what = (f"{named[0]} vs {named[1]}" if named else
                f"scorers {sorted(sb)} vs {sorted(sc)}")
        out.append(f"metric signature differs ({what})")
    return out


def _paired_items(store: Store, task: str, base_run: str, cand_run: str) -> list[dict] | str:
    """Both sides' records of one task by sample id (a string: why they cannot be paired)."""
    b = {r["id"]: r for r in store.run_records(base_run, task)}
    c = {r["id"]: r for r in store.run_records(cand_run, task)}
    if set(b) != set(c):
        only_b, only_c = len(set(b) - set(c)), len(set(c) - set(b))
        return (f"the runs scored different items ({len(b)} vs {len(c)}; {only_b} only in the "
                f"baseline's, {only_c} only in the candidate's: a different --limit?)")
    return [{"id": sid, "input": c[sid].get("input"), "target": c[sid].get("target"),
             "baseline": slim(b[sid]), "candidate": slim(c[sid])} for sid in b]


def slim(record: dict) -> dict:
    """An output with its metric values flat ({metric: value}) and a judge's reasons."""
    values, reasons, parse = {}, [], None
    for name, score in (record.get("scores") or {}).items():
        values.update(score.get("values") or {})
        for verdict in score.get("judges") or []:
            if verdict.get("reasons"):
                reasons.append({"judge": verdict.get("judge"), "reasons": verdict["reasons"],
                                "scores": verdict.get("scores")})
        parse = score.get("parse_status", parse)
    if not values and _num(record.get("score")):
        values["score"] = record["score"]
    return {"prediction": record.get("prediction"), "answer": record.get("answer"),
            "values": values, "reasons": reasons, "parse_status": parse}


def metric_row(task: dict, metric: str, pairs: list[tuple[float, float]], *, seed: int,
               alpha: float, power: float) -> dict:
    c = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    n = len(pairs)
    delta = paired_difference(c, b, seed=seed)
    row = {"task": task["task"], "kind": task["kind"], "metric": metric,
           "headline": metric == task["headline"], "signature": task["signature"], "n": n,
           "baseline": mean_ci(b, seed=seed), "candidate": mean_ci(c, seed=seed),
           "delta": delta["value"], "ci_low": delta["ci_low"], "ci_high": delta["ci_high"]}
    if is_binary(c, b):
        only_b = sum(1 for x, y in pairs if y == 1 and x == 0)
        only_c = sum(1 for x, y in pairs if x == 1 and y == 0)
        row |= {"test": "McNemar exact", "p": mcnemar_exact(only_b, only_c),
                "counts": {"baseline_only": only_b, "candidate_only": only_c}}
    else:
        row |= {"test": "paired permutation", "p": permutation_p(c, b, seed=seed)}
    sd, assumption = difference_sd(c, b)
    row |= {"mde": min_detectable_effect(sd, n, alpha=alpha, power=power),
            "mde_assumption": assumption}
    return row


def pairwise_rows(store: Store, suite: str, base: dict, cand: dict, tasks: list[str],
                  alpha: float, power: float) -> list[dict]:
    """A row per task from the newest `bench judge --pairwise` run of these two models that
    judged exactly these two runs' answers (older verdicts on other answers are not used)."""
    runs = [r for r in store.finished_runs(f"{suite}#pairwise")
            if r["manifest"].get("baseline") == base["model"]
            and r["manifest"].get("candidate") == cand["model"]]
    rows: dict[str, dict] = {}
    for run in reversed(runs):
        for t in store.run_tasks(run["run_id"]):
            if t["task"] in rows or t["task"] not in tasks:
                continue
            judged = store.scored_outputs(run["run_id"], t["task"])
            c_keys = {r["id"]: k for k, r in store.run_items(cand["run_id"], t["task"])}
            b_keys = {r["id"]: k for k, r in store.run_items(base["run_id"], t["task"])}
            same = all(judged.get((sid, "pairwise:candidate-first")) == c_keys.get(sid)
                       and judged.get((sid, "pairwise:baseline-first")) == b_keys.get(sid)
                       for sid in c_keys) and judged
            if not same:
                continue
            m = t["metrics"]
            wr, flips = m["win_rate"], m["flip_rate"]
            wins, losses, ties = wr["wins"], wr["losses"], wr["ties"]
            n = wins + losses + ties
            sd = math.sqrt((wins + losses) / n) / 2 if n else 0.0
            rows[t["task"]] = {
                "task": t["task"], "kind": "pairwise", "metric": "win_rate", "headline": True,
                "signature": t["signature"], "n": n,
                "baseline": None, "candidate": wr, "delta": wr["value"] - 0.5,
                "ci_low": wr["ci_low"] - 0.5, "ci_high": wr["ci_high"] - 0.5,
                "test": "sign test", "p": sign_test(wins, losses),
                "counts": {"wins": wins, "ties": ties, "losses": losses},
                "flip_rate": flips, "lc_win_rate": m.get("lc_win_rate"),
                "judge": run["manifest"].get("judge"), "pairwise_run": run["run_id"],
                "mde": min_detectable_effect(sd, n, alpha=alpha, power=power),
                "mde_assumption": f"sd = sqrt(share of decided items)/2 ({sd:.3g})"}
    return [rows[t] for t in tasks if t in rows]
