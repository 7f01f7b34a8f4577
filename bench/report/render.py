"""Render the leaderboard: one self-contained HTML file, a pure function of a data dict.

The data dict is built by `bench.report.leaderboard.leaderboard_data` (see its shape there). This
module only shapes it for display: number formatting, ranks, the best value per column and which
cells are statistically indistinguishable from it (their 95% CI overlaps the best's). Everything that
came from a model or a dataset is escaped by Jinja2's autoescape; the page makes no network requests.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from bench.files import atomic_path
from bench.report.leaderboard import EXAMPLE_TEXTS

TEMPLATES = Path(__file__).parent / "templates"
COLLAPSE_CHARS = 400  # inputs/predictions longer than this (or with many lines) fold into <details>
COLLAPSE_LINES = 12
BAD_ROWS_SHOWN = 20  # a task's bad data rows listed on the page; the count says how many in all


# Model output is untrusted text. Escaping stops markup; these would still corrupt the page: a NUL
# byte, and bidirectional controls that reorder everything after them (U+202A-202E embeddings
# and overrides, U+2066-2069 isolates, LRM/RLM/ALM). Every expression a template prints shows
# each as a visible escape ("\u202e").
_CONTROLS = re.compile("[\x00\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def visible_controls(value):
    if isinstance(value, str) and not isinstance(value, Markup) and _CONTROLS.search(value):
        return _CONTROLS.sub(lambda m: f"\\u{ord(m[0]):04x}", value)
    return value


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=visible_controls,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(pct=fmt_pct, human=fmt_params, duration=fmt_duration, rate=fmt_rate,
                       thousands=fmt_thousands, num=data_num)
    env.globals.update(collapse_chars=COLLAPSE_CHARS, collapse_lines=COLLAPSE_LINES)
    return env


# ---------------------------------------------------------------- formatting (pure, tested) --

def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fmt_pct(x) -> str:
    return f"{100 * x:.1f}" if _finite(x) else "—"


def fmt_params(n) -> str:
    """1234567 -> '1.2M'; 124_000_000 -> '124M'; 7.6e9 -> '7.6B'."""
    if not _finite(n):
        return "—"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.0f}{suffix}" if abs(v) >= 100 else f"{v:.1f}{suffix}"
    return f"{n:.0f}"


def fmt_duration(s) -> str:
    if not _finite(s):
        return "—"
    if s < 60:
        return f"{s:.1f} s"
    s = round(s)
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def fmt_rate(x) -> str:
    if not _finite(x):
        return "—"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def fmt_thousands(n) -> str:
    return f"{n:,.0f}" if _finite(n) else "—"


def data_num(x) -> str:
    """The exact number for a data-* attribute; '' (sorts last) when missing."""
    return repr(float(x)) if _finite(x) else ""


def _json_for_script(data: dict) -> Markup:
    """JSON that is safe inside <script type="application/json">: no '<', '>' or '&' survive, so
    a '</script>' or '<!--' in model output cannot end the block. JSON.parse/json.loads undo it."""
    text = json.dumps(_json_clean(data), ensure_ascii=False, allow_nan=False, default=str)
    text = (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return Markup(text)  # only escaped JSON is ever marked safe


def _json_clean(x):
    """NaN/inf are not JSON: they become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_clean(v) for v in x]
    return x


# ------------------------------------------------------------------------ view shaping --

def _value(metric) -> float | None:
    if isinstance(metric, dict) and _finite(metric.get("value")):
        return float(metric["value"])
    return None


def _overlaps(m: dict, best: dict) -> bool:
    lo, hi = m.get("ci_low"), m.get("ci_high")
    blo, bhi = best.get("ci_low"), best.get("ci_high")
    if not all(_finite(v) for v in (lo, hi, blo, bhi)):
        return False
    return lo <= bhi and hi >= blo


def _score_cells(metrics: list) -> list[dict]:
    """One display cell per metric: `mark` is 'best' (highest value), 'tie' (its CI overlaps the
    best's CI: not distinguishable from it), '' or 'missing'."""
    values = [_value(m) for m in metrics]
    present = [v for v in values if v is not None]
    top = max(present) if present else None
    best = next((m for m, v in zip(metrics, values) if v is not None and v == top), None)
    cells = []
    for m, v in zip(metrics, values):
        if v is None:
            cells.append({"mark": "missing", "value": None, "ci_low": None, "ci_high": None, "n": None})
            continue
        mark = "best" if v == top else ("tie" if _overlaps(m, best) else "")
        cells.append({"mark": mark, "value": v, "ci_low": m.get("ci_low"),
                      "ci_high": m.get("ci_high"), "n": m.get("n_samples", m.get("n")),
                      "tasks": m.get("n") if "n_samples" in m else None})
    return cells


def _metric_cell(m) -> dict | None:
    """A metric shown as its plain value (not all metrics are rates: a margin is not)."""
    if _value(m) is None:
        return None
    return {"value": _value(m), "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"),
            "n": m.get("n")}


def _plain_cells(values: list, better: str) -> list[dict]:
    """Cells without a CI (speed): only the best one is marked."""
    present = [v for v in values if _finite(v)]
    top = (max if better == "high" else min)(present) if present else None
    return [{"value": v if _finite(v) else None,
             "mark": "missing" if not _finite(v) else ("best" if v == top else "")}
            for v in values]


def _text(x) -> str:
    return "" if x is None else str(x)


def _full_length(example: dict, field: str) -> int:
    """The text's length before `leaderboard_data` cut it (`<field>_chars`), else its length."""
    shown = len(_text(example.get(field)))
    full = example.get(f"{field}_chars")
    return max(int(full), shown) if _finite(full) else shown


def _count(x) -> int:
    return int(x) if _finite(x) and x > 0 else 0


def _rows_view(rows) -> dict | None:
    """What happened to a task's data rows: read, kept (scored), bad (skipped: broken rows) and
    dropped (by rule, with reasons). None when the run did not record it (engines, old runs)."""
    if not isinstance(rows, dict) or not rows:
        return None
    reasons = rows.get("dropped_reasons") or {}
    bad_rows = [b for b in rows.get("bad_rows") or [] if isinstance(b, dict)]
    bad = max(_count(rows.get("bad")), len(bad_rows))
    return {
        "read": rows.get("read") if _finite(rows.get("read")) else None,
        "kept": rows.get("kept") if _finite(rows.get("kept")) else None,
        "bad": bad, "dropped": _count(rows.get("dropped")),
        "dropped_reasons": [(_text(k), v) for k, v in reasons.items()]
        if isinstance(reasons, dict) else [],
        "bad_rows": [{"where": _text(b.get("where")), "reason": _text(b.get("reason"))}
                     for b in bad_rows[:BAD_ROWS_SHOWN]],
    }


def _api_view(api) -> dict:
    """An API model's throughput figures, formatted ('—' where unmeasured)."""
    api = api if isinstance(api, dict) else {}

    def num(key, digits):
        v = api.get(key)
        return f"{v:.{digits}f}" if _finite(v) else "—"

    return {"requests": fmt_thousands(api.get("requests")), "rps": num("requests_per_s", 2),
            "out_tps": num("output_tokens_per_s", 1), "p50": num("latency_p50_s", 3),
            "p95": num("latency_p95_s", 3), "retries": fmt_thousands(api.get("retries")),
            "errors": fmt_thousands(api.get("errors")), "run_id": _text(api.get("run_id"))}


def _view(data: dict) -> dict:
    tasks = list(data.get("tasks") or [])
    models = list(data.get("models") or [])
    keys = [t["key"] for t in tasks]

    averages = _score_cells([m.get("average") for m in models])
    per_task = {k: _score_cells([(m.get("scores") or {}).get(k) for m in models]) for k in keys}
    speed = _plain_cells([m.get("tokens_per_s") for m in models], "high")
    wall = _plain_cells([m.get("wall_s") for m in models], "low")

    order = sorted(range(len(models)), key=lambda i: (
        averages[i]["value"] is None, -(averages[i]["value"] or 0.0), i))
    rank = {i: r + 1 for r, i in enumerate(order)}

    rows = []
    for i, m in enumerate(models):
        rows.append({
            "index": i, "rank": rank[i], "name": _text(m.get("name")),
            "fingerprint": _text(m.get("fingerprint")), "dtype": _text(m.get("dtype")),
            "device": _text(m.get("device")), "run_id": _text(m.get("run_id")),
            "params": m.get("params"), "tokens_pushed": m.get("tokens_pushed"),
            "trust_remote_code": bool(m.get("trust_remote_code")),
            "environment": _text(m.get("environment")), "lock": _text(m.get("lock")),
            "reused": _text(m.get("reused")),
            "base_url": _text(m.get("base_url")) if m.get("base_url") else "",
            "content_addressed": m.get("content_addressed", True) is not False,
            "api": _api_view(m.get("api")) if m.get("base_url") else None,
            "average": averages[i], "scores": [per_task[k][i] for k in keys],
            "speed": speed[i], "wall": wall[i],
            "cached_share": m.get("cached_share") if _finite(m.get("cached_share")) else None,
        })

    examples = data.get("examples") or {}
    sections = []
    for t in tasks:
        ex = [{"model": _text(e.get("model")), "sample_id": _text(e.get("sample_id")),
               **{f: _text(e.get(f)) for f in EXAMPLE_TEXTS},
               **{f"{f}_chars": _full_length(e, f) for f in EXAMPLE_TEXTS},
               "prediction_cut": _text(e.get("prediction_cut")),
               "score": e.get("score") if _finite(e.get("score")) else None,
               "correct": e.get("correct")} for e in examples.get(t["key"]) or []]
        names = [_text(n) for n in t.get("metric_names") or []]
        metric_rows = [{"model": _text(m.get("name")), "cells": [
            _metric_cell(((m.get("metrics") or {}).get(t["key"]) or {}).get(n)) for n in names]}
            for m in models] if len(names) > 1 else []
        signatures = {name: _text(sig) for name, sig in (t.get("signatures") or {}).items()}
        sections.append({"key": _text(t["key"]), "name": _text(t.get("name", t["key"])),
                         "split": _text(t.get("split")), "mode": _text(t.get("mode")),
                         "metric": _text(t.get("metric") or "accuracy"),
                         "signature": _text(t.get("signature")), "n": t.get("n"), "examples": ex,
                         "rows": _rows_view(t.get("rows")), "metric_names": names,
                         "kind": _text(t.get("kind") or "choice"), "signatures": signatures,
                         "metric_rows": metric_rows})

    return {
        "title": _text(data.get("title") or "bench leaderboard"),
        "suite": _text(data.get("suite")), "generated_at": _text(data.get("generated_at")),
        "bench_version": _text(data.get("bench_version")),
        "notes": [_text(n) for n in data.get("notes") or []],
        "tasks": sections, "rows": rows,
        "api_rows": [r for r in rows if r["api"] is not None],
        "pairwise": [_pair_view(p) for p in data.get("pairwise") or []],
    }


def _pair_view(p: dict) -> dict:
    """A pairwise comparison's row: W/T/L, win rates and flip rate as text."""
    def pct(m, key="value"):
        m = m if isinstance(m, dict) else {}
        if not _finite(m.get(key)):
            return "—"
        return f"{fmt_pct(m[key])} [{fmt_pct(m.get('ci_low'))}, {fmt_pct(m.get('ci_high'))}]"

    w = p.get("win_rate") if isinstance(p.get("win_rate"), dict) else {}
    return {"pair": _text(p.get("pair")), "task": _text(p.get("task")), "judge": _text(p.get("judge")),
            "judged": _text(p.get("judged")), "excluded": _text(p.get("excluded")),
            "wtl": f"{w.get('wins', '?')}/{w.get('ties', '?')}/{w.get('losses', '?')}",
            "win": pct(w), "lc": pct(p.get("lc_win_rate")), "flip": pct(p.get("flip_rate"), "rate")}


# ------------------------------------------------------------------------------ public --

def render_leaderboard(data: dict) -> str:
    """The leaderboard page as one HTML string (inline CSS/JS, no network), data embedded as JSON."""
    return _env().get_template("leaderboard.html.j2").render(
        view=_view(data), data_json=_json_for_script(data))


def write_leaderboard(data: dict, out: Path) -> Path:
    return write_page(render_leaderboard(data), out)


def write_page(html: str, out: Path) -> Path:
    """Write a page atomically (temp file in the same folder, then os.replace)."""
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8", newline="\n")
    return out
