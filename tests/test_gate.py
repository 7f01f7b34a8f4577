"""bench compare and bench gate on synthetic runs in a real store: sides, refusals, the paired rows,
the gate's decisions (A/A, planted regressions, power), its false-alarm rate, and its outputs."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from bench.compare.outputs import junit, markdown, write_gate
from bench.compare.policy import GatePolicy, decide, gate, load_policy
from bench.compare.runs import compare, metric_row
from bench.errors import BenchError
from bench.metrics.paired import mcnemar_exact, sign_test
from bench.store import Store
from compare_store import SUITE, binary_records, put_pairwise, put_run, task_info
from helpers import bench_cli

GOLDEN = Path(__file__).parent / "fixtures" / "gate_summary.md"


def _flip(values: list[int], down: int, up: int) -> list[int]:
    """The same item list with `down` right answers made wrong and `up` wrong ones made right."""
    out = list(values)
    right = [i for i, v in enumerate(values) if v == 1]
    wrong = [i for i, v in enumerate(values) if v == 0]
    for i in right[:down]:
        out[i] = 0
    for i in wrong[:up]:
        out[i] = 1
    return out


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path / "bench.sqlite")
    yield s
    s.close()


def _two_runs(store, base_values, cand_values, cand_info=None, base_model="base", cand_model="cand"):
    b = put_run(store, base_model, {"t1-test": (task_info(), binary_records(base_values))})
    c = put_run(store, cand_model, {"t1-test": (cand_info or task_info(), binary_records(cand_values))})
    return b, c


# ------------------------------------------------------------------------------ compare --

def test_rows_count_discordant_items_and_use_mcnemar(store):
    base = [1] * 60 + [0] * 40
    cand = _flip(base, down=20, up=5)  # 20 right→wrong, 5 wrong→right: delta -15 points
    _two_runs(store, base, cand)
    comp = compare(store, SUITE, "base", "cand")
    (row,) = comp["rows"]
    assert row["n"] == 100 and row["delta"] == pytest.approx(-0.15)
    assert row["counts"] == {"baseline_only": 20, "candidate_only": 5}
    assert row["test"] == "McNemar exact" and row["p"] == pytest.approx(mcnemar_exact(20, 5))
    assert row["ci_low"] < -0.15 < row["ci_high"] < 0
    assert row["p_holm"] == row["p"] and row["significant"]  # a family of one
    # the MDE assumption: sd² = 25 discordant of 100
    assert "25.0%" in row["mde_assumption"] and 0.1 < row["mde"] < 0.2


def test_holm_runs_over_headline_rows_of_every_task(store):
    tasks_b = {f"t{k}-test": (task_info(), binary_records([1] * 50 + [0] * 50)) for k in range(3)}
    tasks_c = {f"t{k}-test": (task_info(), binary_records(_flip([1] * 50 + [0] * 50, 0, 10 * k)))
               for k in range(3)}
    put_run(store, "base", tasks_b)
    put_run(store, "cand", tasks_c)
    comp = compare(store, SUITE, "base", "cand")
    assert comp["family_size"] == 3
    ps = sorted((r["p"], r["p_holm"]) for r in comp["rows"])
    assert ps[0][1] == pytest.approx(min(1, 3 * ps[0][0]))  # the smallest p times m
    assert all(h >= p for p, h in ps)


def test_sides_by_model_run_id_and_fingerprint(store):
    b1, _ = _two_runs(store, [1, 0, 1], [1, 1, 1])
    b2 = put_run(store, "base", {"t1-test": (task_info(), binary_records([0, 0, 1]))})
    fp = ("base".encode().hex() * 8)[:64]
    assert compare(store, SUITE, "base", "cand")["baseline"]["run_id"] == b2  # latest
    assert compare(store, SUITE, b1, "cand")["baseline"]["run_id"] == b1
    assert compare(store, SUITE, fp[:12], "cand")["baseline"]["run_id"] == b2
    with pytest.raises(BenchError, match=r"--candidate 'cnad'.*did you mean 'cand'"):
        compare(store, SUITE, "base", "cnad")
    with pytest.raises(BenchError, match="no finished runs of suite 'other'"):
        compare(store, "other", "base", "cand")


@pytest.mark.parametrize("change, words", [
    ({"data_sha256": "e" * 64}, r"t1-test: data file differs \(sha256 dddddddddddd vs eeeeeeeeeeee\)"),
    ({"fingerprint": "taskfp1111111111"}, r"t1-test: prompt template, label mapping or task settings "
                                          r"differ \(task fingerprint taskfp000000 vs taskfp111111\)"),
    ({"decoding": {"mode": "gen", "max_new_tokens": 512}}, r"decoding differs \(max_new_tokens: 64 vs 512\)"),
    ({"signature": "sig|other"}, r"metric signature differs \(sig\|choice vs sig\|other\)"),
])
def test_mismatched_runs_are_refused_naming_the_difference(store, change, words):
    _two_runs(store, [1, 0, 1, 1], [1, 1, 1, 0], cand_info=task_info(**change))
    with pytest.raises(BenchError, match=words) as err:
        compare(store, SUITE, "base", "cand")
    assert "cannot compare base" in str(err.value) and "Rerun both sides" in str(err.value)


def test_different_items_are_refused(store):
    put_run(store, "base", {"t1-test": (task_info(), binary_records([1, 0, 1, 1]))})
    put_run(store, "cand", {"t1-test": (task_info(), binary_records([1, 0]))})
    with pytest.raises(BenchError, match=r"different items \(4 vs 2; 2 only in the baseline's"):
        compare(store, SUITE, "base", "cand")


def test_every_task_kind_compares(store):
    """Choice, preference, open (ROUGE + judge scores) and an engine task: the same paired rows."""
    rng = np.random.default_rng(0)
    judge = task_info("open", ("rouge-l", "judge_overall", "judge_parsed"))

    def side(shift: float, parsed: float):
        return {
            "bustm-test": (task_info(), binary_records(list(rng.integers(0, 2, 40)))),
            "pairs-test": (task_info("preference", ("accuracy", "margin")),
                           [{"id": f"p{i}", "values": {"accuracy": float(rng.integers(0, 2)),
                                                       "margin": float(rng.normal(shift))}} for i in range(40)]),
            "answers-test": (judge, [{"id": f"a{i}", "values": {
                "rouge-l": float(rng.uniform(0, 0.3) + shift / 10), "judge_overall": float(rng.uniform()),
                "judge_parsed": float(i >= 40 * (1 - parsed))}} for i in range(40)]),
            "lm-eval:bench_bustm": (task_info(), binary_records(list(rng.integers(0, 2, 40)))),
        }
    put_run(store, "base", side(0.0, 1.0))
    put_run(store, "cand", side(1.0, 0.75))
    comp = compare(store, SUITE, "base", "cand")
    tests = {(r["task"], r["metric"]): r["test"] for r in comp["rows"]}
    assert tests[("bustm-test", "accuracy")] == "McNemar exact"
    assert tests[("lm-eval:bench_bustm", "accuracy")] == "McNemar exact"
    assert tests[("pairs-test", "margin")] == "paired permutation"
    assert tests[("answers-test", "rouge-l")] == "paired permutation"
    assert tests[("answers-test", "judge_parsed")] == "McNemar exact"
    assert comp["family_size"] == 4  # one headline per task
    result = gate(store, SUITE, "base", "cand", GatePolicy(defaults={"underpowered": "pass"}))
    parse = next(c for c in result["checks"] if c["metric"] == "judge_parse_failure")
    assert parse["status"] == "fail" and parse["value"] == pytest.approx(0.25)
    assert "25.0% of the candidate's judge replies did not parse (above the limit 10%)" == parse["reason"]


def test_pairwise_rows_use_the_sign_test_and_the_flip_rate_limit(store):
    b, c = _two_runs(store, [1] * 30 + [0] * 20, [1] * 30 + [0] * 20)
    put_pairwise(store, "base", "cand", b, c, "t1-test", wins=30, ties=10, losses=10, flips=15)
    put_pairwise(store, "base", "cand", b, c, "t1-test", wins=0, ties=0, losses=50, flips=0,
                 stale=True)  # newer, but judged other answers: not used
    comp = compare(store, SUITE, "base", "cand")
    row = next(r for r in comp["rows"] if r["kind"] == "pairwise")
    assert row["counts"] == {"wins": 30, "ties": 10, "losses": 10}
    assert row["p"] == pytest.approx(sign_test(30, 10)) and row["delta"] == pytest.approx(0.2)
    result = gate(store, SUITE, "base", "cand", GatePolicy(defaults={"max_flip_rate": 0.2}))
    flip = next(c for c in result["checks"] if c["metric"] == "flip_rate")
    assert flip["status"] == "fail" and "30.0% of pairwise verdicts followed" in flip["reason"]


# --------------------------------------------------------------------------------- gate --

def test_a_model_compared_with_itself_passes(store, tmp_path):
    put_run(store, "base", {"t1-test": (task_info(), binary_records([1] * 70 + [0] * 30))})
    result = gate(store, SUITE, "base", "base", GatePolicy())
    assert result["verdict"] == "pass"
    (check,) = result["checks"]
    assert check["delta"] == 0 and check["mde"] == 0 and not check["underpowered"]


def test_planted_regression_beyond_the_detectable_effect_fails(store):
    base = [1] * 320 + [0] * 80
    _two_runs(store, base, _flip(base, down=60, up=0))  # -15 points
    result = gate(store, SUITE, "base", "cand", GatePolicy())
    (check,) = result["checks"]
    assert check["mde"] < 0.15 and check["status"] == "fail" and not check["underpowered"]
    assert check["reason"].startswith("regressed: down 15.0 points")


@pytest.mark.parametrize("policy, status", [("fail", "fail"), ("pass", "pass")])
def test_a_small_regression_on_a_small_set_is_underpowered_and_follows_policy(store, policy, status):
    base = [1] * 30 + [0] * 10
    _two_runs(store, base, _flip(base, down=2, up=0))  # -5 points on 40 items
    result = gate(store, SUITE, "base", "cand", GatePolicy(defaults={"underpowered": policy}))
    (check,) = result["checks"]
    assert check["mde"] > 0.05 and check["underpowered"] and check["status"] == status
    assert f"underpowered: 40 items detect a change of {check['mde'] * 100:.1f} points at 80% power, " \
           f"not 5.0 points, and the policy says {policy}" in check["reason"]
    summary = markdown(result)
    assert "**Underpowered**" in summary and "t1-test · accuracy: down 5.0 points" in summary


def test_min_n_and_required_improvement(store):
    base = [1] * 100 + [0] * 100
    _two_runs(store, base, _flip(base, down=5, up=45))  # +20 points on 200 items
    policy = GatePolicy(checks=[{"task": "t1-*", "min_improvement": 0.1}])
    (check,) = gate(store, SUITE, "base", "cand", policy)["checks"]
    assert check["status"] == "pass" and check["kind"] == "improvement"
    policy = GatePolicy(checks=[{"task": "t1-test", "min_improvement": 0.3}])
    (check,) = gate(store, SUITE, "base", "cand", policy)["checks"]
    assert check["status"] == "fail" and "needs a significant gain of 30.0 points" in check["reason"]
    (check,) = gate(store, SUITE, "base", "cand", GatePolicy(defaults={"min_n": 500}))["checks"]
    assert check["underpowered"] and check["status"] == "fail" and "fewer than min_n 500" in check["reason"]


def test_false_alarm_rate_on_synthetic_a_a_splits_stays_under_alpha():
    """A/A: both sides draw each item's correctness from the same per-item probability (shared
    difficulty), three tasks of 200 items, Holm over them. A false alarm is a failed gate. With
    the power rule off (underpowered: pass) and a margin of 0.1 points, only the significance
    rule can fail it. Over 200 seeded splits the measured rate is 0.015 (bound: 0.05 + 2 SE =
    0.081); the two-sided test only fails on the lower side, so about alpha/2 is expected."""
    rng = np.random.default_rng(7)
    policy = GatePolicy(defaults={"margin": 0.001, "underpowered": "pass", "min_n": 1})
    sims, alarms = 200, 0
    for _ in range(sims):
        rows = []
        for t in range(3):
            p = rng.beta(4, 2, size=200)
            a, b = (rng.random(200) < p).astype(float), (rng.random(200) < p).astype(float)
            task = {"task": f"t{t}", "kind": "choice", "headline": "accuracy", "signature": "s"}
            rows.append(metric_row(task, "accuracy", list(zip(b, a)), seed=1234, alpha=0.05, power=0.8))
        alarms += any(c["status"] == "fail" for c in decide(rows, policy))
    rate, se = alarms / sims, (0.05 * 0.95 / sims) ** 0.5
    print(f"false-alarm rate {rate:.3f} over {sims} A/A splits")
    assert rate <= 0.05 + 2 * se, f"false-alarm rate {rate:.3f} over {sims} A/A splits"


# ------------------------------------------------------------------------------ outputs --

def _golden_store(store):
    base = [1] * 120 + [0] * 40
    put_run(store, "base", {"bustm-test": (task_info(), binary_records(base)),
                            "eprstmt-test": (task_info(), binary_records([1] * 8 + [0] * 4))},
            fingerprint="a" * 64)
    put_run(store, "cand", {"bustm-test": (task_info(), binary_records(_flip(base, 30, 2))),
                            "eprstmt-test": (task_info(), binary_records([1] * 9 + [0] * 3))},
            fingerprint="b" * 64)


def _stable(text: str) -> str:
    return re.sub(r"\d{8}T\d{6}-[0-9a-f]{8}", "RUN-ID", text)


def test_markdown_summary_matches_the_golden_file(store):
    _golden_store(store)
    text = _stable(markdown(gate(store, SUITE, "base", "cand", GatePolicy())))
    if os.environ.get("BENCH_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_junit_xml_parses_with_a_junit_reader(store, tmp_path):
    from junitparser import JUnitXml

    _golden_store(store)
    result = gate(store, SUITE, "base", "cand", GatePolicy())
    paths = write_gate(result, tmp_path / "gate")
    assert [p.name for p in paths] == ["gate.md", "gate.junit.xml", "gate.json"]
    suite = next(iter(JUnitXml.fromfile(str(tmp_path / "gate" / "gate.junit.xml"))))
    cases = {(c.classname, c.name): c for c in suite}
    assert set(cases) == {(f"bench.gate.{SUITE}.bustm-test", "accuracy"),
                          (f"bench.gate.{SUITE}.eprstmt-test", "accuracy")}
    assert suite.tests == 2 and suite.failures == 2
    assert cases[(f"bench.gate.{SUITE}.bustm-test", "accuracy")].result[0].message.startswith("regressed")
    assert junit(result).startswith("<?xml")
    data = json.loads((tmp_path / "gate" / "gate.json").read_text())
    assert data["verdict"] == "fail" and "tasks" not in data["comparison"]


# ---------------------------------------------------------------------------------- CLI --

def test_cli_exit_codes_and_policy_errors(tmp_path):
    store = Store(tmp_path / "bench.sqlite")
    _golden_store(store)
    put_run(store, "same", {"bustm-test": (task_info(), binary_records([1] * 120 + [0] * 40)),
                            "eprstmt-test": (task_info(), binary_records([1] * 8 + [0] * 4))})
    store.close()
    policy = tmp_path / "gate.yaml"
    policy.write_text("defaults: {underpowered: pass}\n", encoding="utf-8")
    args = ("--suite", SUITE, "--results", str(tmp_path), "--policy", str(policy), "--out", str(tmp_path / "g"))
    ok = bench_cli("gate", "--baseline", "same", "--candidate", "same", *args)
    assert ok.returncode == 0, ok.stderr
    assert "gate: PASS" in ok.stdout and (tmp_path / "g" / "gate.md").is_file()
    bad = bench_cli("gate", "--baseline", "base", "--candidate", "cand", *args)
    assert bad.returncode == 1 and "FAIL bustm-test · accuracy: regressed" in bad.stdout
    policy.write_text("defaults:\n  margn: 0.1\n", encoding="utf-8")
    typo = bench_cli("gate", "--baseline", "base", "--candidate", "cand", *args)
    assert typo.returncode == 2 and f"{policy}:2" in typo.stderr and "margin" in typo.stderr
    policy.write_text("checks:\n  - {task: nope-test}\n", encoding="utf-8")
    unknown = bench_cli("gate", "--baseline", "base", "--candidate", "cand", *args)
    assert unknown.returncode == 2 and "task 'nope-test' is not in this comparison" in unknown.stderr
    cmp = bench_cli("compare", "--suite", SUITE, "--results", str(tmp_path), "--baseline", "base",
                    "--candidate", "cand", "--json", str(tmp_path / "c.json"))
    assert cmp.returncode == 0 and "McNemar exact" in cmp.stdout
    assert json.loads((tmp_path / "c.json").read_text())["rows"][0]["counts"] == {
        "baseline_only": 30, "candidate_only": 2}
    html = tmp_path / "ba.html"
    rep = bench_cli("report", "--suite", SUITE, "--results", str(tmp_path), "--baseline", "base",
                    "--candidate", "cand", "--out", str(html))
    assert rep.returncode == 0 and html.is_file() and "bustm-test" in html.read_text(encoding="utf-8")
    missing = bench_cli("report", "--suite", SUITE, "--results", str(tmp_path / "none"),
                        "--baseline", "base", "--candidate", "cand", "--out", str(html))
    assert missing.returncode == 2 and "no results at" in missing.stderr


def test_policy_file_loads_with_defaults(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("alpha: 0.01\ndefaults: {margin: 0.02}\nchecks:\n  - {task: kids-*, metric: rules_pass, "
                    "min_improvement: 0.1}\n", encoding="utf-8")
    policy = load_policy(path)
    assert policy.alpha == 0.01 and policy.defaults.margin == 0.02 and policy.defaults.underpowered == "fail"
    with pytest.raises(BenchError, match="does not exist"):
        load_policy(tmp_path / "missing.yaml")
