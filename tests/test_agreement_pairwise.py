"""Judge agreement (kappa, rho) against hand-worked values, and pairwise outcomes, win rates,
the length-controlled win rate and flip rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.metrics.agreement import cohen_kappa, spearman
from bench.metrics.pairwise import (
    PairVerdict,
    flip_rate,
    length_controlled_win_rate,
    order_verdicts,
    win_rate,
)


def _table(cells: dict[tuple[str, str], int]) -> tuple[list[str], list[str]]:
    a, b = [], []
    for (x, y), count in cells.items():
        a += [x] * count
        b += [y] * count
    return a, b


# --- Cohen's kappa ---------------------------------------------------------------------------

def test_kappa_balanced_2x2():
    # yes/yes 4, no/no 4, yes/no 1, no/yes 1 (n=10): observed = 8/10 = 0.8.
    # each rater says yes 5/10: expected = 0.5*0.5 + 0.5*0.5 = 0.5; kappa = (0.8-0.5)/(1-0.5) = 0.6
    a, b = _table({("yes", "yes"): 4, ("no", "no"): 4, ("yes", "no"): 1, ("no", "yes"): 1})
    r = cohen_kappa(a, b)
    assert r["n"] == 10
    assert r["observed"] == pytest.approx(0.8)
    assert r["expected"] == pytest.approx(0.5)
    assert r["kappa"] == pytest.approx(0.6)
    assert r["ci_low"] <= r["kappa"] <= r["ci_high"]


def test_kappa_unbalanced_marginals():
    # a yes & b yes 20, a yes & b no 5, a no & b yes 10, a no & b no 15 (n=50).
    # observed = 35/50 = 0.7; a yes 25/50 = 0.5, b yes 30/50 = 0.6;
    # expected = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = (0.7-0.5)/0.5 = 0.4
    a, b = _table({("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15})
    r = cohen_kappa(a, b)
    assert (r["observed"], r["expected"]) == pytest.approx((0.7, 0.5))
    assert r["kappa"] == pytest.approx(0.4)


def test_kappa_three_labels_and_explicit_label_set():
    # A/A 2, B/B 2, C/C 1, A/B 1 (n=6): observed 5/6. shares a: A 3/6, B 2/6, C 1/6;
    # b: A 2/6, B 3/6, C 1/6. expected = (6 + 6 + 1)/36 = 13/36; kappa = (5/6 - 13/36)/(23/36)
    # = (30 - 13)/23 = 17/23. An unused extra label changes nothing.
    a, b = _table({("A", "A"): 2, ("B", "B"): 2, ("C", "C"): 1, ("A", "B"): 1})
    assert cohen_kappa(a, b)["kappa"] == pytest.approx(17 / 23)
    assert cohen_kappa(a, b, labels=["A", "B", "C", "D"])["kappa"] == pytest.approx(17 / 23)
    with pytest.raises(ValueError, match="outside labels"):
        cohen_kappa(a, b, labels=["A", "B"])


def test_kappa_degenerate_cases():
    # both raters always "yes": observed 1, expected 1*1 = 1 -> 0/0, undefined, not an error
    r = cohen_kappa(["yes"] * 5, ["yes"] * 5)
    assert r["kappa"] is None and r["observed"] == 1 and r["expected"] == 1
    assert "undefined" in r["note"] and r["ci_low"] is None
    # perfect agreement over two labels: kappa 1 (the CI may drop one-label replicates)
    r = cohen_kappa(["y", "n", "y", "n"], ["y", "n", "y", "n"])
    assert r["kappa"] == pytest.approx(1.0)
    # complete disagreement, 50/50 each: observed 0, expected 0.5 -> kappa -1
    assert cohen_kappa(["y", "n"], ["n", "y"])["kappa"] == pytest.approx(-1.0)
    assert cohen_kappa([], [])["kappa"] is None
    with pytest.raises(ValueError, match="same items"):
        cohen_kappa(["y"], ["y", "n"])


def test_kappa_ci_ignores_item_order():
    a, b = _table({("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15})
    perm = np.random.default_rng(0).permutation(len(a))
    shuffled = cohen_kappa([a[i] for i in perm], [b[i] for i in perm])
    assert shuffled == cohen_kappa(a, b)


# --- Spearman --------------------------------------------------------------------------------

def test_spearman_small_ranking():
    # ranks x 1..5, y 2,1,4,3,5: d = -1,1,-1,1,0, sum d^2 = 4;
    # rho = 1 - 6*4 / (5*(25-1)) = 1 - 24/120 = 0.8
    r = spearman([10, 20, 30, 40, 50], [2.0, 1.0, 4.0, 3.0, 5.0])
    assert r["rho"] == pytest.approx(0.8) and r["n"] == 5
    assert 0 < r["p_value"] < 1
    assert r["ci_low"] <= r["rho"] <= r["ci_high"] <= 1


def test_spearman_ties_get_average_ranks():
    # x = 1,2,2,3 -> ranks 1,2.5,2.5,4; y ranks 1,2,3,4. Centred: -1.5,0,0,1.5 and
    # -1.5,-.5,.5,1.5. Pearson = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4])["rho"] == pytest.approx(math.sqrt(0.9))


def test_spearman_degenerate_cases():
    assert spearman([1, 2], [2, 1])["rho"] is None
    r = spearman([3, 3, 3, 3], [1, 2, 3, 4])
    assert r["rho"] is None and r["p_value"] is None and "constant" in r["note"]
    with pytest.raises(ValueError):
        spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        spearman([1, 2, float("nan")], [1, 2, 3])


# --- pairwise outcomes -----------------------------------------------------------------------

@pytest.mark.parametrize("first,second,outcome,flipped", [
    # first call: A = candidate, B = baseline; second call: A = baseline, B = candidate
    ("A", "B", "win", False),    # candidate preferred in both orders
    ("B", "A", "loss", False),   # baseline preferred in both orders
    ("A", "A", "tie", True),     # position A both times: the verdict followed the order
    ("B", "B", "tie", True),     # position B both times
    ("tie", "tie", "tie", False),
    ("A", "tie", "tie", False),  # one win + one tie: not both orders agree -> tie
    ("tie", "B", "tie", False),
    ("B", "tie", "tie", False),  # one loss + one tie -> tie
    (" a ", "Tie", "tie", False),  # case and whitespace are forgiven
])
def test_order_verdicts_truth_table(first, second, outcome, flipped):
    assert order_verdicts(first, second) == PairVerdict(outcome, flipped)


def test_order_verdicts_rejects_unknown_verdict():
    with pytest.raises(ValueError, match="second verdict 'C'"):
        order_verdicts("A", "C")


def test_win_rate_counts_and_ties_as_half():
    # 5 wins, 2 ties, 3 losses: (5 + 2/2) / 10 = 0.6
    r = win_rate(["win"] * 5 + ["tie"] * 2 + ["loss"] * 3)
    assert (r["wins"], r["ties"], r["losses"], r["n"]) == (5, 2, 3, 10)
    assert r["value"] == pytest.approx(0.6)
    assert (r["win_share"], r["tie_share"], r["loss_share"]) == pytest.approx((0.5, 0.2, 0.3))
    assert r["ci_low"] <= 0.6 <= r["ci_high"]
    assert win_rate([])["value"] is None
    with pytest.raises(ValueError, match="item 1"):
        win_rate(["win", "draw"])


def _length_data(win_if_longer: float, win_if_shorter: float):
    # 160 items where the candidate is 400 chars longer, 40 where it is 400 chars shorter
    out = (["win"] * round(160 * win_if_longer) + ["loss"] * round(160 * (1 - win_if_longer))
           + ["win"] * round(40 * win_if_shorter) + ["loss"] * round(40 * (1 - win_if_shorter)))
    return out, [400.0] * 160 + [-400.0] * 40


def test_length_controlled_win_rate_removes_a_pure_length_effect():
    # longer wins 95%, shorter wins 5%: symmetric in the length term, so at equal length the
    # judge is 50/50, yet the raw rate is (152 + 2) / 200 = 77% because the candidate is usually
    # the longer one.
    outcomes, diff = _length_data(0.95, 0.05)
    r = length_controlled_win_rate(outcomes, diff)
    assert r["raw_win_rate"] == pytest.approx(0.77)
    assert abs(r["value"] - 0.5) <= 0.08
    assert r["length_coef"] > 1
    assert r["ci_low"] <= r["value"] <= r["ci_high"]


def test_length_controlled_win_rate_on_random_length_driven_data():
    # continuous lengths skewed towards the candidate; the longer answer wins 85% of the time,
    # whichever model wrote it, so at equal length the judge is 50/50 (raw rate ~ 0.76)
    rng = np.random.default_rng(7)
    diff = rng.normal(250, 200, size=800)
    p = np.where(diff > 0, 0.85, 0.15)
    outcomes = np.where(rng.random(800) < p, "win", "loss").tolist()
    r = length_controlled_win_rate(outcomes, diff)
    assert r["raw_win_rate"] > 0.7
    assert abs(r["value"] - 0.5) <= 0.08
    assert r["ci_low"] < 0.5 < r["ci_high"] < r["raw_win_rate"]


def test_length_controlled_win_rate_keeps_a_real_preference():
    # the candidate wins 90% whether longer or shorter: no length effect, LC stays ~ 90%
    outcomes, diff = _length_data(0.9, 0.9)
    r = length_controlled_win_rate(outcomes, diff)
    assert r["value"] == pytest.approx(0.9, abs=0.03)
    assert abs(r["length_coef"]) < 0.5
    assert r["ci_low"] > 0.8


def test_length_controlled_win_rate_edge_cases():
    # all wins, perfectly separated or constant lengths: finite values thanks to the L2 term
    r = length_controlled_win_rate(["win"] * 20, list(range(20)))
    assert 0.9 < r["value"] <= 1 and np.isfinite(r["length_coef"])
    r = length_controlled_win_rate(["win"] * 10 + ["loss"] * 10, [100] * 10 + [-100] * 10)
    assert abs(r["value"] - 0.5) < 0.05
    r = length_controlled_win_rate(["win", "tie", "loss", "win"], [0, 0, 0, 0])
    assert r["value"] == pytest.approx(0.625, abs=0.01) and "dropped" in r["note"]
    assert length_controlled_win_rate([], [])["value"] is None
    with pytest.raises(ValueError, match="one per item"):
        length_controlled_win_rate(["win"], [1, 2])


def test_length_controlled_ci_ignores_item_order():
    outcomes, diff = _length_data(0.8, 0.3)
    perm = np.random.default_rng(1).permutation(len(diff))
    a = length_controlled_win_rate(outcomes, diff)
    b = length_controlled_win_rate([outcomes[i] for i in perm], [diff[i] for i in perm])
    assert a == pytest.approx(b)


def test_flip_rate():
    verdicts = [order_verdicts(*v) for v in [("A", "A"), ("A", "B"), ("B", "B"), ("B", "A")]]
    r = flip_rate([v.flipped for v in verdicts])
    assert (r["rate"], r["n"]) == (0.5, 4)
    assert 0 <= r["ci_low"] <= 0.5 <= r["ci_high"] <= 1
    assert flip_rate([])["rate"] is None
