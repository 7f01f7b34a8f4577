"""What `bench gate` writes: a markdown summary fit for a pull-request comment, JUnit XML (one test
case per checked task and metric, for CI test views) and the whole result as JSON."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.files import atomic_path


def _num(x, points: bool = True) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x * 100:.1f}" if points else f"{x:.3g}"


def _delta(c: dict) -> str:
    points = c["metric"] != "margin"
    f = (lambda x: f"{x * 100:+.1f}") if points else (lambda x: f"{x:+.3g}")
    return f"{f(c['delta'])} [{f(c['ci_low'])}, {f(c['ci_high'])}]"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(result: dict) -> str:
    """The summary: verdict, sides, one table row per check, and in words which checks were
    underpowered and which failed (no timestamps, so equal inputs give equal text)."""
    comp, checks = result["comparison"], result["checks"]
    b, c = comp["baseline"], comp["candidate"]
    failed = [x for x in checks if x["status"] == "fail"]
    icon = "✅ PASS" if result["verdict"] == "pass" else "❌ FAIL"
    lines = [f"## bench gate: {icon} — suite `{comp['suite']}`", "",
             f"- baseline: `{b['model']}` (run `{b['run_id']}`, model `{(b['fingerprint'] or '')[:12]}`)",
             f"- candidate: `{c['model']}` (run `{c['run_id']}`, model `{(c['fingerprint'] or '')[:12]}`)",
             f"- {len(checks)} checks, {len(failed)} failed; α = {comp['alpha']} after Holm over "
             f"{comp['family_size']} tests; power {comp['power']:.0%} for the detectable effect", "",
             "| task | metric | n | baseline | candidate | Δ [95% CI] | p (Holm) | detectable | result |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for x in checks:
        mark = "✅" if x["status"] == "pass" else "❌"
        if x["kind"] == "threshold":
            lines.append(f"| {_cell(x['task'])} | {x['metric']} | {x['n']} | | {_num(x['value'])}% "
                         f"| | | | {mark} ≤ {_num(x['limit'])}% |")
            continue
        points = x["metric"] != "margin"
        p = f"{x['p_holm']:.2g}" if x["p_holm"] is not None else "–"
        lines.append(f"| {_cell(x['task'])} | {x['metric']} | {x['n']} | {_num(x['baseline'], points)} "
                     f"| {_num(x['candidate'], points)} | {_delta(x)} | {p} | ±{_num(x['mde'], points)} "
                     f"| {mark}{' (underpowered)' if x['underpowered'] else ''} |")
    lines.append("")
    if failed:
        lines += ["**Failed:**", ""] + [f"- {_cell(x['task'])} · {x['metric']}: {x['reason']}" for x in failed] + [""]
    weak = [x for x in checks if x["underpowered"]]
    if weak:
        lines += ["**Underpowered** (the test set is too small to detect the declared effect, so "
                  "the policy's `underpowered` setting decided):", ""]
        lines += [f"- {_cell(x['task'])} · {x['metric']}: {x['reason']}" for x in weak] + [""]
    skipped = comp.get("skipped") or []
    if skipped:
        lines += ["Not compared: " + "; ".join(f"{s['task']} ({s['reason']})" for s in skipped), ""]
    lines.append("Δ and detectable effects in points for shares (accuracy, ROUGE, pass rates, judge "
                 "scores). Tests: McNemar exact for 0/1 metrics, paired permutation otherwise, sign "
                 "test for pairwise verdicts; CIs by paired bootstrap.")
    return "\n".join(lines) + "\n"


def junit(result: dict) -> str:
    """JUnit XML: a test suite per gate, a test case per check; a failed check is a <failure>."""
    comp, checks = result["comparison"], result["checks"]
    failures = sum(x["status"] == "fail" for x in checks)
    suite = ET.Element("testsuite", name=f"bench gate {comp['suite']}", tests=str(len(checks)),
                       failures=str(failures), errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    for side in ("baseline", "candidate"):
        for key in ("model", "run_id", "fingerprint"):
            ET.SubElement(props, "property", name=f"{side}.{key}", value=str(comp[side][key]))
    for x in checks:
        case = ET.SubElement(suite, "testcase", classname=f"bench.gate.{comp['suite']}.{x['task']}",
                             name=x["metric"])
        if x["status"] == "fail":
            ET.SubElement(case, "failure", message=x["reason"], type=x["kind"]).text = x["reason"]
        else:
            ET.SubElement(case, "system-out").text = x["reason"]
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def write_gate(result: dict, out_dir: Path) -> list[Path]:
    """gate.md, gate.junit.xml and gate.json under out_dir (each written atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    slim = {**result, "comparison": {k: v for k, v in result["comparison"].items() if k != "tasks"}}
    paths = []
    for name, text in (("gate.md", markdown(result)), ("gate.junit.xml", junit(result)),
                       ("gate.json", json.dumps(slim, ensure_ascii=False, indent=1, default=str))):
        with atomic_path(out_dir / name) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
        paths.append(out_dir / name)
    return paths


def print_comparison(out, comp: dict) -> None:
    """`bench compare`'s table on the terminal (rich)."""
    from rich.markup import escape
    from rich.table import Table

    b, c = comp["baseline"], comp["candidate"]
    table = Table(title=f"{escape(c['model'])} vs {escape(b['model'])} · suite {escape(comp['suite'])}",
                  title_justify="left")
    for col in ("task", "metric", "n", "baseline", "candidate", "Δ [95% CI]", "test", "p",
                "p (Holm)", "detectable"):
        table.add_column(col, justify="left" if col in ("task", "metric", "test") else "right")
    for r in comp["rows"]:
        points = r["metric"] != "margin"
        base = _num((r["baseline"] or {}).get("value"), points)
        style = ("green" if r["delta"] > 0 else "red") if r["significant"] else None
        table.add_row(escape(r["task"]), r["metric"], str(r["n"]), base,
                      _num(r["candidate"]["value"], points), _delta(r), r["test"], f"{r['p']:.2g}",
                      f"{r['p_holm']:.2g}" if r["p_holm"] is not None else "–",
                      f"±{_num(r['mde'], points)}", style=style)
    out.print(table)
    out.print(f"Holm over {comp['family_size']} headline tests at α = {comp['alpha']}; green/red: "
              "significant after Holm. 'detectable': the smallest change n items detect at "
              f"{comp['power']:.0%} power. Shares in points.")
    for s in comp.get("skipped") or []:
        out.print(f"not compared: {escape(s['task'])} ({s['reason']})")
