"""Terminal tables: the end of `bench run` and `bench models`."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.config import TRUST_ENV, ModelsFile, looks_local, path_problems
from bench.metrics.stats import headline


def pct(metric: dict | None) -> str:
    """'61.3 [53.8, 68.8] n=160'; a suite average names its samples and tasks."""
    if not metric or metric.get("value") is None:
        return "—"
    tasks = f"{metric.get('n')} task{'' if metric.get('n') == 1 else 's'}"
    n = (f"n={metric['n_samples']} in {tasks}" if "n_samples" in metric
         else f"n={metric['n']}")
    return f"{100 * metric['value']:.1f} [{100 * metric['ci_low']:.1f}, {100 * metric['ci_high']:.1f}] {n}"


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
        first = next(m[key] for m in by_model if key in m)
        name = headline(first.metrics)[0]
        table.add_row(key if name == "accuracy" else f"{key} ({name})",
                      *(pct(headline(m[key].metrics)[1]) if key in m else "—" for m in by_model),
                      *([skipped.get(key, "")] if skipped else []))
    table.add_section()
    table.add_row("average", *(pct(run.average) for run in runs), style="bold")

    def total(run, name):
        return sum(t.timings[name] for t in run.tasks)

    table.add_row("computed / cached", *(f"{total(r, 'computed')} / {total(r, 'cached')}" for r in runs))
    table.add_row("wall s", *(f"{total(r, 'wall_s'):.1f}" for r in runs))
    table.add_row("tokens/s", *(
        f"{total(r, 'tokens_pushed') / total(r, 'wall_s'):.0f}" if total(r, "computed") else "—"
        for r in runs))
    console.print(table)
    console.print(f"model calls this run: {sum(r.model_calls for r in runs)} · scores computed: "
                  f"{sum(r.scorer_calls for r in runs)}")
    for r in runs:
        if r.api:
            console.print(f"{escape(r.model)} (API): {api_line(r.api)}", soft_wrap=True)
        for name, used in r.judges.items():
            cost = f" · cost {used['cost']:.4f} {used['currency']}" if "cost" in used else ""
            console.print(f"judge {escape(name)} on {escape(r.model)}'s answers: {used['requests']} "
                          f"requests · {used['prompt_tokens']} prompt + {used['completion_tokens']} "
                          f"completion tokens · retries {used['retries']} · errors "
                          f"{used['errors']}{cost}", soft_wrap=True)


def api_line(api: dict) -> str:
    """'40 requests · 12.3 requests/s · 45 output tokens/s · latency p50 0.081 s, p95 0.200 s ·
    retries 0 · errors 0'."""
    def sec(v):
        return f"{v:.3f} s" if v is not None else "—"

    cost = f" · cost {api['cost']:.4f} {api['currency']}" if "cost" in api else ""
    return (f"{api['requests']} requests · {api['requests_per_s'] or 0:.2f} requests/s · "
            f"{api['output_tokens_per_s'] or 0:.1f} output tokens/s · latency p50 "
            f"{sec(api['latency_p50_s'])}, p95 {sec(api['latency_p95_s'])} · retries "
            f"{api['retries']} · errors {api['errors']}{cost}"
            + (f" · tokens unknown for {api['usage_missing']} requests (no usage in the response)"
               if api.get("usage_missing") else ""))


def _remote_code(spec) -> str:
    """How a model stands with code from its own folder ('' when it has none and asks for none)."""
    config = Path(spec.path).expanduser() / "config.json"
    try:
        has_code = "auto_map" in json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        has_code = False
    if spec.trust_remote_code:
        return ("trust_remote_code is set: it runs Python code from the model's folder; `bench run` "
                f"needs --trust-remote-code (or {TRUST_ENV}=1) as well")
    return ("its folder holds remote code, which is not run (trust_remote_code is off)"
            if has_code else "")


def print_models(console: Console, models: ModelsFile) -> bool:
    """One row per model; a local path that does not exist is flagged. True when all are usable."""
    table = Table(title="models")
    for col in ("name", "backend", "path", "revision", "template", "adapter", "status"):
        table.add_column(col, overflow="fold")  # a narrow terminal wraps names, never cuts them
    failures, notes = [], []
    for m in models.models:
        problems = path_problems(m)
        failures += [f"{models.where_name(m.name)}: model '{m.name}': {p}" for p in problems]
        code = _remote_code(m) if not problems else ""
        notes += [f"{models.where_name(m.name)}: model '{m.name}': {code}"] if code else []
        if m.backend == "openai":
            status = "not found" if problems else "API" + (
                " · serves known weights" if m.weights_fingerprint else " · not content-addressed")
        else:
            status = "not found" if problems else ("local" if looks_local(m.path) else "Hub id")
        status += " · remote code" if code else ""
        color = "red" if problems else "yellow" if code else "green"
        table.add_row(m.name, m.backend, m.path, getattr(m, "revision", None) or "", m.template,
                      m.adapter or "", f"[{color}]{escape(status)}[/]")
    console.print(table)
    for line in failures + notes:
        console.print(line, soft_wrap=True, markup=False)
    return not failures


def print_trained(console: Console, outputs: dict[str, dict]) -> None:
    """`bench models`: the trained models of the results store (bench train outputs)."""
    if not outputs:
        return
    table = Table(title="trained models (bench train; bench run --model NAME)")
    for col in ("name", "base", "adapter", "quantization", "system", "fingerprint", "trained"):
        table.add_column(col, overflow="fold")
    for name, o in outputs.items():
        e = o["entry"]
        table.add_row(name, e["path"], e.get("adapter") or "", e.get("quantization", "none"),
                      "yes" if e.get("system") else "", o["fingerprint"][:12],
                      f"{o['versions']} time{'s' if o['versions'] > 1 else ''}")
    console.print(table)


def print_overlaps(console: Console, found: list, total: int, n: int) -> None:
    """`bench decontam`: each held-out item found in training, then the count."""
    if found:
        table = Table(title=f"held-out items sharing a {n}-character span with training data")
        for col in ("held-out item", "share", "training rows", "longest shared span"):
            table.add_column(col, overflow="fold")
        for o in found:
            more = f" (+{o.n_train - len(o.train_ids)})" if o.n_train > len(o.train_ids) else ""
            table.add_row(o.id, f"{o.share:.0%}", ", ".join(o.train_ids) + more, o.span[:200])
        console.print(table)
    console.print(f"{len(found)} of {total} held-out items share a {n}-character span with the "
                  "training data", markup=False)
