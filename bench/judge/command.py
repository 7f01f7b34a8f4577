"""`bench judge`: grade stored answers again, or compare two models pairwise; with human labels,
the judge's agreement with people beside its numbers."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from bench.errors import BenchError
from bench.judge.human import pairwise_agreement, read_labels, score_agreement


def _pct(m: dict | None, key: str = "value") -> str:
    if not m or m.get(key) is None:
        return "—"
    return f"{100 * m[key]:.1f} [{100 * m['ci_low']:.1f}, {100 * m['ci_high']:.1f}]"


def _agreement(m: dict | None, key: str) -> str:
    if not m or m.get(key) is None:
        return f"— ({m.get('note')})" if m and m.get("note") else "—"
    return f"{m[key]:.2f} [{m['ci_low']:.2f}, {m['ci_high']:.2f}] n={m['n']}"


def judge_scores(suite, models, names, judges, human, data_dir, limit, store, trained, console,
                 out, verbose, trust_remote_code: bool = False) -> None:
    from bench.evaluate.suite import run_suite
    from bench.report.terminal import print_runs

    labels = read_labels(human)[1] if human else None
    runs = run_suite(suite, models, names, data_dir, limit, store, console, trust_remote_code,
                     verbose, trained, judges, generate=False)
    print_runs(out, runs)
    if labels is None:
        return
    opened = store() if callable(store) else store
    table = Table(title="agreement with people: Spearman's ρ per dimension [95% CI] n")
    for col in ("model", "task", "dimension", "ρ"):
        table.add_column(col)
    for run in runs:
        for task in run.tasks:
            judged = {}
            for _, record in opened.run_items(run.run_id, task.task):
                for verdict in (record.get("scores", {}).get("judge") or {}).get("judges", [])[:1]:
                    judged.update({(record["id"], d): v for d, v in verdict["scores"].items()})
            for dim, rho in score_agreement(task.task, judged, labels).items():
                table.add_row(run.model, task.task, dim, _agreement(rho, "rho"))
    out.print(table)


def judge_pairwise(suite, models, baseline, candidate, judges, human, data_dir, limit, store,
                   trained, console, out, verbose, trust_remote_code: bool = False) -> None:
    from bench.evaluate.suite import plan_run
    from bench.judge.pairwise import run_pairwise
    from bench.logs import log_path, third_party_output

    if baseline == candidate:
        raise BenchError("--baseline and --candidate name the same model")
    labels = read_labels(human)[0] if human else None
    plan = plan_run(Path(suite), Path(models), [baseline, candidate], data_dir, limit,
                    trust_remote_code, console, trained, judges[:1] if judges else None, generate=False)
    opened = store() if callable(store) else store
    with third_party_output(log_path(opened.path.parent), verbose, console):
        results = run_pairwise(plan, opened, baseline, candidate, judges[0] if judges else None)
    table = Table(title=f"{candidate} vs {baseline}: wins/ties/losses, win rate % [95% CI]")
    for col in ("task", "judge", "judged", "excluded", "W/T/L", "win rate", "length-controlled",
                "flip rate", "asked now", *(["κ with people"] if labels else [])):
        table.add_column(col)
    for r in results:
        w = r["win_rate"]
        table.add_row(r["task"], r["judge"], str(r["judged"]), str(r["excluded"]),
                      f"{w['wins']}/{w['ties']}/{w['losses']}", _pct(w), _pct(r["lc_win_rate"]),
                      _pct(r["flip_rate"], "rate"), str(r["asked"]),
                      *([_agreement(pairwise_agreement(r["task"], r["items"], labels), "kappa")]
                        if labels else []))
    out.print(table)
