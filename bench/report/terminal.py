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


def print_runs(console: Console, runs) -> None:
    if not runs:
        return
    keys = [t.task for t in runs[0].tasks]
    table = Table(title="accuracy % [95% bootstrap CI]", title_justify="left")
    table.add_column("model", style="bold")
    for key in keys:
        table.add_column(key, justify="right")
    table.add_column("average", justify="right", style="bold")
    table.add_column("computed/cached", justify="right")
    table.add_column("wall s", justify="right")
    table.add_column("tok/s", justify="right")
    for run in runs:
        by_key = {t.task: t for t in run.tasks}
        wall = sum(t.timings["wall_s"] for t in run.tasks)
        pushed = sum(t.timings["tokens_pushed"] for t in run.tasks)
        computed = sum(t.timings["computed"] for t in run.tasks)
        cached = sum(t.timings["cached"] for t in run.tasks)
        table.add_row(
            run.model, *(pct(by_key[k].metrics["accuracy"]) if k in by_key else "—" for k in keys),
            pct(run.average), f"{computed}/{cached}", f"{wall:.1f}",
            f"{pushed / wall:.0f}" if wall > 0 and pushed else "—",
        )
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
