"""Agreement of a judge with people: a JSONL of human labels, one per line, either
`{"task", "sample_id", "preferred": "baseline" | "candidate" | "tie"}` (pairwise: Cohen's κ against
the judge's outcomes) or `{"task", "sample_id", "dimension", "score"}` (rubric: Spearman's ρ per
dimension against the judge's scores). Bad lines follow bench's bad-row policy."""

from __future__ import annotations

from pathlib import Path

from bench.files import iter_rows
from bench.metrics.agreement import cohen_kappa, spearman
from bench.rows import RowLog, check

PREFERRED = {"candidate": "win", "baseline": "loss", "tie": "tie"}


def read_labels(path: Path) -> tuple[dict, dict, RowLog]:
    """(pairwise: (task, sample_id) -> outcome, scores: (task, sample_id, dimension) -> score)."""
    rows, pairs, scores = RowLog(str(path)), {}, {}
    for line, r in iter_rows(path, rows):
        where = f"{path}:{line}"
        task, sid = r.get("task"), r.get("sample_id")
        if not isinstance(task, str) or not isinstance(sid, str):
            rows.bad(where, "needs 'task' and 'sample_id' (strings)")
        elif "preferred" in r and r["preferred"] in PREFERRED:
            pairs[(task, sid)] = PREFERRED[r["preferred"]]
            rows.kept += 1
        elif isinstance(r.get("dimension"), str) and isinstance(r.get("score"), (int, float)):
            scores[(task, sid, r["dimension"])] = float(r["score"])
            rows.kept += 1
        else:
            rows.bad(where, "needs 'preferred' (baseline, candidate or tie), or 'dimension' and a "
                     "numeric 'score'")
    check(rows)
    return pairs, scores, rows


def pairwise_agreement(task: str, items: dict[str, str], labels: dict) -> dict | None:
    """κ between the judge's outcomes and people's on the items both have (None: no overlap)."""
    both = [sid for sid in items if (task, sid) in labels]
    if not both:
        return None
    return cohen_kappa([items[s] for s in both], [labels[(task, s)] for s in both],
                       labels=["win", "tie", "loss"])


def score_agreement(task: str, judged: dict[tuple[str, str], float], labels: dict) -> dict:
    """ρ per dimension: judged (sample_id, dimension) -> score against people's."""
    out = {}
    for dim in sorted({d for (t, _, d) in labels if t == task}):
        both = [sid for (t, sid, d) in labels if t == task and d == dim and (sid, dim) in judged]
        if both:
            out[dim] = spearman([judged[(s, dim)] for s in both],
                                [labels[(task, s, dim)] for s in both])
    return out
