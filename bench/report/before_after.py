"""`bench report`: one self-contained HTML page for stakeholders: what got better, what got worse,
and the items that show it, for a candidate's run of a suite against a baseline's.

`before_after_data` is a pure function of the store (it never calls a model): `compare()` (paired
tests, Holm, minimum detectable effects) plus headline sentences in plain words, the items whose
headline score flipped, answer lengths and, when the candidate came from `bench train`, its
training curves and sampled answers. `render_before_after` draws it (Jinja2 autoescape, inline
SVG, no network); every text from a model or a dataset is escaped.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import bench
from bench.compare.runs import ALPHA, POWER, compare
from bench.metrics.paired import is_binary
from bench.metrics.stats import mean_ci, paired_difference
from bench.report import svg
from bench.report.leaderboard import _clip
from bench.report.render import _env, _json_for_script, write_page
from bench.store import Store

FLIPS_SHOWN = 20  # items listed per direction per task; the count says how many in all
UNITS = {"margin": "nats"}  # every other metric is a share, shown in percentage points
CURVES = (("loss", ("loss", "eval_loss")), ("DPO reward accuracy", ("rewards/accuracies",)),
          ("DPO reward margin", ("rewards/margins",)))


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# ------------------------------------------------------------------------------- data --

def before_after_data(store: Store, suite: str, baseline: str, candidate: str, *,
                      alpha: float = ALPHA, power: float = POWER) -> dict:
    """The page's data (JSON-ready): compare()'s result without the raw items, plus `cards`
    (headline sentences), per task `flips` and `lengths`, `tests` and `training`."""
    comp = compare(store, suite, baseline, candidate, alpha=alpha, power=power)
    run = store.run(comp["candidate"]["run_id"]) or {"manifest": {}}
    modes = {k: v.get("mode") for k, v in (run["manifest"].get("tasks") or {}).items()}
    tasks = [{"task": t["task"], "kind": t["kind"], "signature": t["signature"],
              "headline": t["headline"], "metrics": t["metrics"], "n": len(t["items"]),
              "flips": flips(t),
              "lengths": (answer_lengths(t["items"], comp["seed"])
                          if t["kind"] == "open" or modes.get(t["task"]) == "gen" else None)}
             for t in comp["tasks"]]
    tests: dict[str, int] = {}
    for r in comp["rows"]:
        tests[r["test"]] = tests.get(r["test"], 0) + 1
    return {"title": f"{comp['candidate']['model']} vs {comp['baseline']['model']} on {suite}",
            "bench_version": bench.__version__,
            **{k: comp[k] for k in ("suite", "alpha", "power", "seed", "family_size", "baseline",
                                    "candidate", "rows", "skipped")},
            "cards": [card(r, comp["family_size"], power) for r in comp["rows"] if r["headline"]],
            "tasks": tasks, "tests": tests,
            "training": training(store, comp["candidate"], comp["baseline"])}


def _plain(x: float, metric: str, sign: str = "") -> str:
    """A value in its display unit without the unit: nats as they are, shares in percent."""
    return f"{x:{sign}.2f}" if metric in UNITS else f"{100 * x:{sign}.1f}"


def _value(x: float, metric: str) -> str:
    return f"{_plain(x, metric)} nats" if metric in UNITS else f"{_plain(x, metric)}%"


def _diff(x: float, metric: str) -> str:
    return f"{_plain(x, metric, '+')} {UNITS.get(metric, 'points')}"


def _ci(row: dict) -> str:
    m = row["metric"]
    return f"{_plain(row['ci_low'], m, '+')} to {_plain(row['ci_high'], m, '+')}"


def _p(p: float) -> str:
    return f"{p:.3g}" if p >= 0.001 else f"{p:.1g}"


def card(row: dict, family_size: int, power: float) -> dict:
    """A headline row in plain words: improved, regressed or no significant change, and whether
    the test set was big enough to see a change of the size observed."""
    m, d = row["metric"], row["delta"]
    ci = f"95% CI {_ci(row)}"
    if row["kind"] == "pairwise":
        c = row["counts"]
        what = (f"{row['task']} pairwise win rate (judge {row.get('judge') or '?'}): "
                f"{_value(row['candidate']['value'], m)} ({_diff(d, m)} over an even 50%, {ci}; "
                f"wins/ties/losses {c['wins']}/{c['ties']}/{c['losses']})")
    else:
        what = (f"{row['task']} {m.replace('_', ' ')}: {_value(row['baseline']['value'], m)} → "
                f"{_value(row['candidate']['value'], m)} ({_diff(d, m)}, {ci})")
    checks = f"{family_size} check{'s' if family_size != 1 else ''}"
    if row["significant"]:
        status = "improved" if d > 0 else "regressed"
        why = f"significant after Holm correction over {checks} (p = {_p(row['p_holm'])})"
    else:
        status = "no significant change"
        why = f"not significant after Holm correction over {checks} (p = {_p(row['p_holm'])})"
    power_note = None
    if not row["significant"] and _num(row.get("mde")) and row["mde"] > abs(d):
        size = _diff(row["mde"], m).lstrip("+")
        power_note = (f"this test set of {row['n']} items can only detect changes of ±{size} "
                      f"({power:.0%} power)")
    return {"task": row["task"], "metric": m, "status": status, "text": f"{what}, {why}",
            "underpowered": power_note}


def flips(task: dict, shown: int = FLIPS_SHOWN) -> dict:
    """The items whose headline score changed: right→wrong and wrong→right for a 0/1 metric;
    otherwise the largest drops and gains. Capped at `shown` each, with the counts in all."""
    h = task["headline"]
    scored = [(it, it["baseline"]["values"].get(h), it["candidate"]["values"].get(h))
              for it in task["items"]]
    scored = [(it, b, c) for it, b, c in scored if _num(b) and _num(c)]
    binary = is_binary([b for _, b, _ in scored], [c for _, _, c in scored])
    worse = sorted((s for s in scored if s[2] < s[1]), key=lambda s: s[2] - s[1])
    better = sorted((s for s in scored if s[2] > s[1]), key=lambda s: s[1] - s[2])
    return {"metric": h, "binary": binary,
            "worse": {"count": len(worse), "items": [_flip_item(*s) for s in worse[:shown]]},
            "better": {"count": len(better), "items": [_flip_item(*s) for s in better[:shown]]}}


def _flip_item(item: dict, b: float, c: float) -> dict:
    def side(out: dict, value: float) -> dict:
        text, chars = _clip(out.get("prediction"))
        reasons = [{"judge": str(r.get("judge") or "judge"), "scores": r.get("scores") or {},
                    "reasons": {str(k): _clip(v)[0] for k, v in (r.get("reasons") or {}).items()}}
                   for r in out.get("reasons") or [] if isinstance(r.get("reasons"), dict)]
        answer = out.get("answer")
        return {"prediction": text, "prediction_chars": chars, "value": value, "reasons": reasons,
                "answer": None if answer in (None, out.get("prediction")) else _clip(answer)[0]}

    (inp, inp_n), (tgt, tgt_n) = _clip(item.get("input")), _clip(item.get("target"))
    return {"id": str(item["id"]), "input": inp, "input_chars": inp_n, "target": tgt,
            "target_chars": tgt_n, "baseline": side(item["baseline"], b),
            "candidate": side(item["candidate"], c)}


def answer_lengths(items: list[dict], seed: int) -> dict | None:
    """Mean characters per answer before and after, with the paired difference (None when the
    task's outputs are not text)."""
    pairs = [(len(it["candidate"]["prediction"]), len(it["baseline"]["prediction"]))
             for it in items if isinstance(it["candidate"].get("prediction"), str)
             and isinstance(it["baseline"].get("prediction"), str)]
    if not pairs:
        return None
    c, b = [p[0] for p in pairs], [p[1] for p in pairs]
    return {"n": len(pairs), "baseline": mean_ci(b, seed=seed), "candidate": mean_ci(c, seed=seed),
            "delta": paired_difference(c, b, seed=seed)}


def training(store: Store, cand: dict, base: dict) -> dict:
    """How the candidate was trained, when a `bench train` registration has its fingerprint."""
    fp = cand.get("fingerprint") or ""
    regs = [r for r in store.models_by_fingerprint(fp) if r["train_key"]] if len(fp) >= 12 else []
    record = store.training(regs[-1]["train_key"]) if regs else None
    if record is None:
        return {"from_training": False, "note": (
            f"{cand['model']} (fingerprint {fp[:12] or '?'}) did not come from `bench train` in "
            "this store: no trained model with its fingerprint has a training record here.")}
    rec = record["record"]
    manifest = rec.get("manifest") or {}
    cfg = manifest.get("config") or {}
    log = [e for e in rec.get("log") or []  # not the trainer's closing summary (run averages)
           if isinstance(e, dict) and _num(e.get("step")) and "train_runtime" not in e]
    curves = []
    for title, keys in CURVES:
        series = {k: [[e["step"], e[k]] for e in log if _num(e.get(k))] for k in keys}
        if any(series.values()):
            curves.append({"title": title, "series": {k: v for k, v in series.items() if v}})
    samples: dict[str, list] = {}
    for s in rec.get("samples") or []:
        text, chars = _clip(s.get("output"))
        samples.setdefault(_clip(s.get("input"))[0], []).append(
            {"step": s.get("step"), "output": text, "output_chars": chars})
    return {"from_training": True, "name": regs[-1]["name"], "train_key": record["train_key"],
            "status": record["status"], "method": cfg.get("method"), "base": cfg.get("base"),
            "finetuning": cfg.get("finetuning"),
            "base_fingerprint": manifest.get("base_fingerprint"),
            "base_is_baseline": manifest.get("base_fingerprint") == base.get("fingerprint"),
            "data_sha256": manifest.get("data_sha256"), "rows": manifest.get("rows"),
            "steps": rec.get("steps"), "wall_s": rec.get("wall_s"), "curves": curves,
            "samples": [{"input": k, "outputs": v} for k, v in samples.items()]}


# ----------------------------------------------------------------------------- render --

def _tone(row: dict) -> str:
    return ("up" if row["delta"] > 0 else "down") if row["significant"] else "flat"


def _row_view(row: dict, limit: float) -> dict:
    """A delta-table row: formatted numbers and its bar (its own scale when not a share)."""
    m = row["metric"]
    scale = 1.0 if m in UNITS else 100.0
    lim = svg.nice_limit([scale * row[k] for k in ("ci_low", "ci_high", "delta")]) \
        if m in UNITS else limit
    label = f"{row['task']} {m}: {_diff(row['delta'], m)} (95% CI {_ci(row)})"

    def side(s: dict | None) -> dict:
        if not s or not _num(s.get("value")):
            return {"value": "—", "ci": ""}
        return {"value": _value(s["value"], m),
                "ci": f"[{_plain(s['ci_low'], m)}, {_plain(s['ci_high'], m)}]"}

    return {**row, "tone": _tone(row), "before": side(row["baseline"]),
            "after": side(row["candidate"]), "diff": _diff(row["delta"], m), "ci": _ci(row),
            "p_text": _p(row["p"]),
            "p_holm_text": f"Holm {_p(row['p_holm'])}" if _num(row["p_holm"]) else "uncorrected",
            "mde_text": _diff(row["mde"], m).lstrip("+") if _num(row.get("mde")) else "—",
            "scale": f"±{lim:g} {UNITS[m]}" if m in UNITS else None,
            "bar": svg.delta_bar(scale * row["delta"], scale * row["ci_low"],
                                 scale * row["ci_high"], lim, _tone(row), label)}


def _view(data: dict) -> dict:
    shares = [100 * r[k] for r in data["rows"] if r["metric"] not in UNITS
              for k in ("ci_low", "ci_high", "delta") if _num(r[k])]
    limit = svg.nice_limit(shares) or 1.0
    groups = []
    for t in data["tasks"]:
        rows = sorted((r for r in data["rows"] if r["task"] == t["task"]),
                      key=lambda r: (not r["headline"], r["kind"] == "pairwise"))
        groups.append({**t, "rows": [_row_view(r, limit) for r in rows]})
    judge = [{**_row_view(r, limit), "pair": svg.two_intervals(
        r["baseline"], r["candidate"], f"{r['task']} {r['metric']}: before (top) and after")}
        for r in data["rows"] if r["metric"].startswith("judge_") and r["baseline"]]
    train = dict(data["training"])
    if train["from_training"]:
        train["charts"] = [svg.line_chart(c["series"], c["title"]) for c in train["curves"]]
    sides = {}
    for k in ("baseline", "candidate"):
        cmd = data[k].get("command")
        sides[k] = {**data[k], "command_text": shlex.join(map(str, cmd))
                    if isinstance(cmd, list) else str(cmd or "")}
    return {**data, **sides, "groups": groups, "judge": judge, "training": train,
            "axis": svg.axis(limit, "points")}


def _embedded(data: dict) -> dict:
    """The data for the JSON block: flipped items by id only (their texts are on the page)."""
    def ids(part: dict) -> dict:
        return {"count": part["count"], "ids": [i["id"] for i in part["items"]]}

    tasks = [{**t, "flips": {**t["flips"], "worse": ids(t["flips"]["worse"]),
                             "better": ids(t["flips"]["better"])}} for t in data["tasks"]]
    return {**data, "tasks": tasks}


def render_before_after(data: dict) -> str:
    """The before/after page as one HTML string (inline CSS and SVG, no network)."""
    return _env().get_template("before_after.html.j2").render(
        view=_view(data), data_json=_json_for_script(_embedded(data)))


def write_before_after(data: dict, out: Path) -> Path:
    return write_page(render_before_after(data), out)
