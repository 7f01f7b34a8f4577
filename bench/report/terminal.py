"""Terminal tables: the end of `bench run` and `bench models`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.config import ModelsFile


def pct(metric: dict | None) -> str:
    if not metric or metric.get("value") is None:
        return "—"
    return (f"{100 * metric['value']:.1f} [{100 * metric['ci_low']:.1f}, "
            f"{100 * metric['ci_high']:.1f}] n={metric['n']}")


def skipped_rows(rows: dict) -> str:
    """'1 bad, 2 dropped of 163 read' for a task's RowLog summary."""
    parts = [f"{rows['bad']} bad"] if rows["bad"] else []
    parts += [f"{rows['dropped']} dropped"] if rows["dropped"] else []
    return f"{', '.join(parts)} of {rows['read']} read"


def print_runs(console: Console, runs) -> None:
    """One row per task, one column per model: fits a terminal whatever the suite's size."""
    if not runs:
        return
    keys = list(dict.fromkeys(t.task for run in runs for t in run.tasks))
    table = Table(title="accuracy % [95% bootstrap CI] n", title_justify="left")
    table.add_column("task", style="bold")
    for run in runs:
        table.add_column(run.model, justify="right")
    by_model = [{t.task: t for t in run.tasks} for run in runs]
    rows = {t.task: t.rows for run in runs for t in run.tasks if t.rows}
    skipped = {k: skipped_rows(r) for k, r in rows.items() if r["bad"] or r["dropped"]}
    if skipped:
        table.add_column("rows skipped", style="yellow")
    for key in keys:
        table.add_row(key, *(pct(m[key].metrics["accuracy"]) if key in m else "—" for m in by_model),
                      *([skipped.get(key, "")] if skipped else []))
    table.add_section()
    table.add_row("average", *(pct(run.average) for run in runs), style="bold")

    def total(run, name):
        return sum(t.timings[name] for t in run.tasks)

    table.add_row("computed / cached", *(f"{total(r, 'computed')} / {total(r, 'cached')}" for r in runs))
    table.add_row("wall s", *(f"{total(r, 'wall_s'):.1f}" for r in runs))
    table.add_row("tokens/s", *(
        f"{total(r, 'tokens_pushed') / total(r, 'wall_s'):.0f}" if total(r, "wall_s") > 0 else "—"
        for r in runs))
    console.print(table)
    console.print(f"model calls this run: {sum(r.model_calls for r in runs)}")


def print_models(console: Console, models: ModelsFile) -> bool:
    """One row per model; a local path that does not exist is flagged. True when all are usable."""
    table = Table(title="models")
    for col in ("name", "backend", "path", "revision", "template", "adapter", "status"):
        table.add_column(col)
    failures = []
    for m in models.models:
        problems = []
        local = m.path.startswith((".", "/", "~")) or Path(m.path).exists()
        if local and not Path(m.path).expanduser().exists():
            problems.append("path not found")
        if m.adapter and not Path(m.adapter).expanduser().exists():
            problems.append("adapter not found")
        failures += [f"model '{m.name}': {p} ({m.adapter if 'adapter' in p else m.path})"
                     for p in problems]
        status = ", ".join(problems) or ("local" if local else "Hub id")
        table.add_row(m.name, m.backend, m.path, m.revision or "", m.template, m.adapter or "",
                      f"[red]{status}[/]" if problems else f"[green]{status}[/]")
    console.print(table)
    for line in failures:
        console.print(line, soft_wrap=True, markup=False)
    return not failures
