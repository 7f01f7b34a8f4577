"""The leaderboard's data: a pure function of the store (the latest finished run per model)."""

from __future__ import annotations

import time

import bench
from bench.compare.sides import environment_text, lock_text, reused_text
from bench.errors import BenchError
from bench.metrics.stats import headline, mean_ci, suite_average
from bench.store import Store

EXAMPLES_PER_TASK = 6
MAX_TEXT_CHARS = 2000  # per example text; a record's input or prediction can be megabytes
EXAMPLE_TEXTS = ("input", "target", "prediction", "answer")


def _clip(text) -> tuple[str, int]:
    """The first MAX_TEXT_CHARS characters and the full length (the page states both)."""
    text = "" if text is None else str(text)
    return text[:MAX_TEXT_CHARS], len(text)


def _pick_examples(per_model: dict[str, list[dict]]) -> list[dict]:
    """Samples where models disagree first (they show what differs), then the rest, in order.
    Each text is cut to MAX_TEXT_CHARS, with its full length in `<field>_chars`, so neither the
    examples table nor the page's embedded JSON grows with a runaway input or prediction."""
    if not per_model:
        return []
    by_id: dict[str, dict[str, dict]] = {}
    for model, records in per_model.items():
        for r in records:
            by_id.setdefault(r["id"], {})[model] = r
    ids = list(by_id)
    ids.sort(key=lambda i: len({r["answer"] for r in by_id[i].values()}) == 1)
    rows = []
    for sid in ids[:EXAMPLES_PER_TASK]:
        for model, r in by_id[sid].items():
            row = {"model": model, "sample_id": sid}
            for field in EXAMPLE_TEXTS:
                row[field], row[f"{field}_chars"] = _clip(r.get(field))
            row["correct"] = r["score"] == 1.0
            row["score"] = r["score"]
            row["prediction_cut"] = r.get("prediction_cut", "")
            rows.append(row)
    return rows


def compute_cost(records: list[dict], timings: dict) -> dict:
    """Wall time and tokens it took to compute these records, whenever that was (each record
    carries its share); a run's own timings for records stored before records carried it."""
    if records and all("cost" in r for r in records):  # shares of whole chunks: sum, then round
        return {"wall_s": sum(r["cost"]["wall_s"] for r in records),
                "tokens_pushed": round(sum(r["cost"]["tokens_pushed"] for r in records))}
    return {"wall_s": timings.get("wall_s", 0.0), "tokens_pushed": timings.get("tokens_pushed", 0)}


def leaderboard_data(store: Store, suite: str) -> dict:
    runs = store.latest_runs(suite)
    if not runs:
        raise BenchError(f"no finished runs of suite '{suite}' in {store.path}; run `bench run` first")
    tasks: dict[str, dict] = {}
    models, records = [], {}
    for run in runs:
        manifest = run["manifest"]
        scores, metrics, wall, pushed, cached, answered = {}, {}, 0.0, 0, 0, 0
        per_task_scores = {}
        for row in store.run_tasks(run["run_id"]):
            key = row["task"]
            info = manifest["tasks"].get(key, {})
            if ":" in key:  # an engine task, "<engine>:<name>"; its split is in the manifest
                name, split = key.split(":", 1)[1], str(info.get("split", ""))
            else:  # a native task, "<name>-<split>"
                name, split = key.rsplit("-", 1)[0], key.rsplit("-", 1)[-1]
            metric, value = headline(row["metrics"])
            task = tasks.setdefault(key, {
                "key": key, "name": name, "split": split, "kind": info.get("kind", "choice"),
                "mode": info.get("mode", ""), "signature": row["signature"], "n": info.get("n", 0),
                "rows": None, "metric": metric, "metric_names": [],
                "signatures": {sc["metrics"][0]: sc["signature"]  # under each scorer's first
                               for sc in info.get("scorers", {}).values() if sc.get("metrics")},
            })
            for other in row["metrics"]:  # every metric any model has, first model's order
                if other != "engine" and other not in task["metric_names"]:
                    task["metric_names"].append(other)
            if task["rows"] is None and info.get("rows"):  # read/kept/bad/dropped of its data
                task["rows"] = info["rows"]
            scores[key] = value
            metrics[key] = {k: v for k, v in row["metrics"].items() if k != "engine"}
            recs = store.run_records(run["run_id"], key)
            if task["kind"] == "open":  # how long the answers are, beside how good
                metrics[key]["answer_chars"] = mean_ci(
                    [len((r.get("prediction") or "").strip()) for r in recs],
                    seed=manifest.get("seed", 1234))
                if "answer_chars" not in task["metric_names"]:
                    task["metric_names"].append("answer_chars")
            cost = compute_cost(recs, row["timings"])
            wall, pushed = wall + cost["wall_s"], pushed + cost["tokens_pushed"]
            cached += row["timings"].get("cached", 0)
            answered += len(recs)
            records.setdefault(key, {})[run["model"]] = recs
            per_task_scores[key] = [r["score"] for r in recs]
        backend = manifest.get("backend", {})
        models.append({
            "name": run["model"], "fingerprint": manifest.get("model_fingerprint", ""),
            "params": backend.get("params"), "dtype": backend.get("dtype", ""),
            "device": backend.get("device", ""), "wall_s": wall, "tokens_pushed": pushed,
            "tokens_per_s": pushed / wall if wall > 0 and pushed else None,
            "cached_share": cached / answered if answered else None,
            "run_id": run["run_id"], "scores": scores, "metrics": metrics,
            "trust_remote_code": bool(manifest.get("trust_remote_code")),
            "environment": environment_text(manifest), "lock": lock_text(manifest),
            "reused": reused_text(manifest),
            "api": run.get("api"), "base_url": backend.get("base_url"),
            "content_addressed": backend.get("content_addressed", True),
            "average": suite_average(per_task_scores, seed=manifest.get("seed", 1234)),
        })
    models.sort(key=lambda m: -(m["average"]["value"] or 0))
    pairwise = [{"pair": run["model"], "judge": run["manifest"].get("judge", ""),
                 "run_id": run["run_id"], "task": row["task"], **row["metrics"]}
                for run in store.latest_runs(f"{suite}#pairwise")
                for row in store.run_tasks(run["run_id"])]
    return {
        "title": f"bench leaderboard — suite {suite}",
        "suite": suite,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bench_version": bench.__version__,
        "tasks": list(tasks.values()),
        "models": models,
        "examples": {k: _pick_examples(v) for k, v in records.items()},
        "pairwise": pairwise,
        "notes": [
            "Accuracy (or a task's first metric) in %, with a 95% seeded bootstrap CI and n; a "
            "task with more metrics lists them all in its section. FewCLUE dev sets are small "
            "(n≈160): differences inside the CIs are noise.",
            "Wall time, tokens pushed and tokens/s are what computing these results took, also "
            "where this run read them from the cache (its share is shown under the wall time).",
            *(["A model marked API is scored over an OpenAI-compatible API; one marked "
               "'not content-addressed' is known by its URL and model id only, and the weights "
               "behind them can change under the same name."] if any(
                  m["base_url"] for m in models) else []),
        ],
    }
