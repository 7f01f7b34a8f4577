"""`bench gate`: a policy file's checks applied to a comparison (bench/compare/runs.py).

Each checked (task, metric) row passes or fails on its own:
- regression: the candidate is worse by more than `margin` and the drop is significant (its
  Holm-adjusted p below `alpha`): "dropped by more than the margin, and it is not noise";
- improvement (when `min_improvement` is set): the candidate must be better by at least that much,
  significantly;
- power: when the test set is too small to detect the declared effect (the margin, or the required
  improvement) with `power`, i.e. its minimum detectable effect is larger, or n < `min_n`, the check
  is underpowered and `underpowered` decides (fail by default: a pass it could not have failed is
  not a pass). A significant regression fails whatever the power;
- judge replies: the share of the candidate's judge replies that did not parse, at most
  `max_parse_failure`;
- pairwise verdicts: the share whose verdict followed the answer order, at most `max_flip_rate`.
Holm's correction runs over the checked rows. Exit code: 0 pass, 1 fail (2: bad input).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr

from bench.compare.runs import ALPHA, POWER, apply_holm, compare
from bench.config import Source, Strict, _validate
from bench.errors import BenchError, suggest
from bench.store import Store


class Rules(Strict):
    margin: float = Field(0.05, gt=0, description=(
        "non-inferiority margin, in the metric's units (0.05 = 5 points of accuracy)"))
    min_improvement: float | None = Field(None, gt=0, description="required gain, if any")
    min_n: int = Field(30, ge=1, description="fewer paired items than this: underpowered")
    underpowered: Literal["fail", "pass"] = "fail"
    max_parse_failure: float = Field(0.10, ge=0, le=1, description="judge replies not parsed")
    max_flip_rate: float = Field(0.25, ge=0, le=1, description="pairwise verdicts that followed order")


class Check(Strict):
    task: str = Field(description="a task key of the suite (e.g. eprstmt-test) or a glob")
    metric: str | None = Field(None, description="default: the task's headline metric")
    margin: float | None = Field(None, gt=0)
    min_improvement: float | None = Field(None, gt=0)
    min_n: int | None = Field(None, ge=1)
    underpowered: Literal["fail", "pass"] | None = None
    max_parse_failure: float | None = Field(None, ge=0, le=1)
    max_flip_rate: float | None = Field(None, ge=0, le=1)


class GatePolicy(Strict):
    alpha: float = Field(ALPHA, gt=0, lt=1, description="significance level, after Holm")
    power: float = Field(POWER, gt=0, lt=1, description="for the minimum detectable effect")
    defaults: Rules = Rules()
    checks: list[Check] = Field(default_factory=list, description=(
        "per task or metric: overrides of the defaults, or a non-headline metric to check too"))
    _source: Source | None = PrivateAttr(None)


def load_policy(path: Path) -> GatePolicy:
    if not Path(path).is_file():
        raise BenchError(f"gate policy {path} does not exist (see README, 'Gate a merge')")
    return _validate(GatePolicy, Path(path), "is empty; write at least `defaults: {margin: 0.05}`",
                     "checks")


def _rules(policy: GatePolicy, task: str, metric: str, headline: bool) -> Rules | None:
    """The rules for one row: the defaults for headline rows (and the judge's parse rate),
    overridden by every matching check in file order (a check without `metric` means the
    headline one); None: not checked."""
    rules, checked = policy.defaults.model_dump(), headline or metric == "judge_parsed"
    for check in policy.checks:
        wanted = metric == check.metric or check.metric == "*" or (check.metric is None and headline)
        if wanted and fnmatch.fnmatchcase(task, check.task):
            checked = True
            rules |= check.model_dump(exclude={"task", "metric"}, exclude_none=True)
    return Rules(**rules) if checked else None


def gate(store: Store, suite: str, baseline: str, candidate: str, policy: GatePolicy) -> dict:
    """{'verdict': 'pass'|'fail', 'checks': [...], 'comparison': compare()'s dict, 'policy'}."""
    comp = compare(store, suite, baseline, candidate, alpha=policy.alpha, power=policy.power)
    _check_names(policy, comp["rows"])
    checks = decide(comp["rows"], policy)
    comp["family_size"] = sum(1 for r in comp["rows"] if r["p_holm"] is not None)
    verdict = "fail" if any(c["status"] == "fail" for c in checks) else "pass"
    return {"verdict": verdict, "checks": checks, "comparison": comp, "policy": policy.model_dump()}


def decide(rows: list[dict], policy: GatePolicy) -> list[dict]:
    """The checks over compare()'s rows: Holm re-run over the checked rows, then each row under
    its rules, plus the flip-rate and judge parse-failure limits."""
    rules = {id(r): _rules(policy, r["task"], r["metric"], r["headline"]) for r in rows}
    apply_holm(rows, lambda r: rules[id(r)] is not None and r["metric"] != "judge_parsed",
               policy.alpha)
    checks = []
    for row in rows:
        if (r := rules[id(row)]) is None:
            continue
        if row["metric"] == "judge_parsed":  # a limit on replies that did not parse, not a test
            checks.append(_threshold(row, "judge_parse_failure", 1 - row["candidate"]["value"],
                                     r.max_parse_failure, "of the candidate's judge replies did not parse"))
            continue
        checks.append(judge_row(row, r, policy.alpha, policy.power))
        if row["kind"] == "pairwise":
            checks.append(_threshold(row, "flip_rate", row["flip_rate"]["rate"], r.max_flip_rate,
                                     "of pairwise verdicts followed the answer order"))
    return checks


def _check_names(policy: GatePolicy, rows: list[dict]) -> None:
    tasks = sorted({r["task"] for r in rows})
    for i, check in enumerate(policy.checks):
        where = policy._source.where("checks", i) if policy._source else f"checks[{i}]"
        matched = [r for r in rows if fnmatch.fnmatchcase(r["task"], check.task)]
        if not matched:
            raise BenchError(f"{where}: task '{check.task}' is not in this comparison"
                             f"{suggest(check.task, tasks)}")
        metrics = sorted({r["metric"] for r in matched})
        if check.metric and check.metric != "*" and check.metric not in metrics:
            raise BenchError(f"{where}: task '{check.task}' has no metric '{check.metric}'"
                             f"{suggest(check.metric, metrics)}")


def judge_row(row: dict, rules: Rules, alpha: float, power: float) -> dict:
    """One metric row under its rules: status, whether low power decided it, the reason in words."""
    delta, mde, n, low = row["delta"], row["mde"], row["n"], row["ci_low"]
    points = row["metric"] != "margin"  # every other metric is a share: speak in points
    size = (lambda x: f"{abs(x) * 100:.1f} points") if points else (lambda x: f"{abs(x):.3g}")
    signed = (lambda x: f"{x * 100:+.1f}") if points else (lambda x: f"{x:+.3g}")
    effect = rules.min_improvement or rules.margin
    significant = row["p_holm"] is not None and row["p_holm"] < alpha
    low_power = n < rules.min_n or mde is None or mde > effect
    change = (f"{'up' if delta > 0 else 'down'} {size(delta)} (95% CI {signed(low)} to "
              f"{signed(row['ci_high'])})" if delta else "no change")
    holm = f"Holm p = {row['p_holm']:.2g}" if row["p_holm"] is not None else "not tested"
    if significant and delta < -rules.margin:
        status, decided, reason = "fail", False, f"regressed: {change}, beyond the {size(rules.margin)} margin ({holm})"
    elif rules.min_improvement and significant and delta >= rules.min_improvement:
        status, decided, reason = "pass", False, f"improved: {change} ({holm}), at least {size(effect)}"
    elif rules.min_improvement:
        decided = low_power
        status = rules.underpowered if low_power else "fail"
        reason = f"{change} ({holm}); needs a significant gain of {size(effect)}"
    elif low >= -rules.margin and n >= rules.min_n:
        status, decided, reason = "pass", False, (f"{change} ({holm}); the CI rules out a drop "
                                                  f"beyond the {size(rules.margin)} margin")
    else:
        decided = low_power
        status = rules.underpowered if low_power else "pass"
        reason = f"{change} ({holm}); no significant drop beyond {size(rules.margin)}"
    if decided:
        reason += ("; underpowered: " + (f"{n} items, fewer than min_n {rules.min_n}" if n < rules.min_n
                   else f"{n} items detect a change of {size(mde)} at {power:.0%} power, not "
                        f"{size(effect)}") + f", and the policy says {rules.underpowered}")
    return {"task": row["task"], "metric": row["metric"], "kind": "improvement" if
            rules.min_improvement else "non-inferiority", "n": n, "delta": delta, "ci_low": low,
            "ci_high": row["ci_high"], "p": row["p"], "p_holm": row["p_holm"], "mde": mde,
            "effect": effect, "underpowered": decided, "test": row["test"],
            "baseline": (row["baseline"] or {}).get("value"), "candidate": row["candidate"]["value"],
            "mde_assumption": row["mde_assumption"], "status": status, "reason": reason}


def _threshold(row: dict, name: str, value: float, limit: float, words: str) -> dict:
    ok = value <= limit
    return {"task": row["task"], "metric": name, "kind": "threshold", "n": row["n"],
            "value": value, "limit": limit, "underpowered": False,
            "status": "pass" if ok else "fail",
            "reason": f"{value:.1%} {words} ({'within' if ok else 'above'} the limit {limit:.0%})"}
