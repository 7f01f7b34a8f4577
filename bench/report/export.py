"""`bench export`: a suite's latest runs as two flat tables that pandas, DuckDB or a spreadsheet
read directly — one row per (model, task, metric) and one row per scored sample.

    metrics.<fmt>  suite, model, run_id, model_fingerprint, task, task_fingerprint, signature,
                   metric, value, ci_low, ci_high, n, computed, cached (this run), wall_s,
                   tokens_pushed (what computing the results took, cached or not)
    samples.<fmt>  suite, model, run_id, task, sample_id, input, target, prediction, answer,
                   score, prediction_cut, cache_key
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from bench.errors import BenchError
from bench.files import atomic_path
from bench.report.leaderboard import compute_cost
from bench.store import Store

FORMATS = ("csv", "jsonl", "parquet")
METRIC_COLUMNS = ("suite", "model", "run_id", "model_fingerprint", "task", "task_fingerprint",
                  "signature", "metric", "value", "ci_low", "ci_high", "n", "computed", "cached",
                  "wall_s", "tokens_pushed")
SAMPLE_COLUMNS = ("suite", "model", "run_id", "task", "sample_id", "input", "target", "prediction",
                  "answer", "score", "prediction_cut", "cache_key")


def tables(store: Store, suite: str) -> tuple[list[dict], list[dict]]:
    """(metric rows, sample rows) of the latest finished run of `suite` per model."""
    runs = store.latest_runs(suite)
    if not runs:
        raise BenchError(f"no finished runs of suite '{suite}' in {store.path}; run `bench run` first")
    metrics, samples = [], []
    for run in runs:
        manifest = run["manifest"]
        base = {"suite": suite, "model": run["model"], "run_id": run["run_id"]}
        for row in store.run_tasks(run["run_id"]):
            items = store.run_items(run["run_id"], row["task"])
            timings = row["timings"] | compute_cost([r for _, r in items], row["timings"])
            named = {k: v for k, v in row["metrics"].items() if k != "engine"}
            named |= {f"engine:{k}": v for k, v in (row["metrics"].get("engine") or {}).items()
                      if isinstance(v, dict) and "value" in v}
            for name, m in named.items():
                metrics.append({
                    **base, "model_fingerprint": manifest.get("model_fingerprint"),
                    "task": row["task"], "task_fingerprint": row["task_fp"],
                    "signature": row["signature"], "metric": name, "value": m.get("value"),
                    "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"), "n": m.get("n"),
                    **{k: timings.get(k) for k in ("computed", "cached", "wall_s", "tokens_pushed")},
                })
            for key, r in items:
                samples.append({**base, "task": row["task"], "sample_id": r.get("id"),
                                **{c: r.get(c) for c in SAMPLE_COLUMNS[5:-1]}, "cache_key": key})
    return metrics, samples


def _write(rows: list[dict], columns: tuple[str, ...], path: Path, fmt: str) -> None:
    with atomic_path(path) as tmp:
        if fmt == "csv":
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, columns)
                writer.writeheader()
                writer.writerows(rows)
        elif fmt == "jsonl":
            with open(tmp, "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
            pq.write_table(table, tmp)


def export(store: Store, suite: str, out_dir: Path, fmt: str = "csv") -> list[Path]:
    """Write metrics.<fmt> and samples.<fmt> into `out_dir`; return their paths."""
    if fmt not in FORMATS:
        raise BenchError(f"unknown format '{fmt}'; use one of: {', '.join(FORMATS)}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ModuleNotFoundError:
            raise BenchError("--format parquet needs pyarrow: pip install pyarrow") from None
    metrics, samples = tables(store, suite)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"metrics.{fmt}", out_dir / f"samples.{fmt}"]
    _write(metrics, METRIC_COLUMNS, paths[0], fmt)
    _write(samples, SAMPLE_COLUMNS, paths[1], fmt)
    return paths
