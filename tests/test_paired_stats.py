"""The paired statistics (bench/metrics/paired.py, bench/metrics/stats.paired_difference) checked
against values worked by hand or by brute force in this file, never by calling the library that
the code under test calls. Offline, seeded, and fast (simulations are small and vectorised)."""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
import pytest

from bench.metrics.paired import (N_PERMUTATIONS, difference_sd, holm, mcnemar_exact,
                                  min_detectable_effect, permutation_p, sign_test)
from bench.metrics.stats import paired_difference


def binom_two_sided_half(k: int, n: int) -> float:
    """Two-sided exact binomial p at p=1/2, from integer binomial coefficients:
    2 * P(X <= min(k, n-k)), capped at 1 (the null is symmetric, so both tails are equal)."""
    if n == 0:
        return 1.0
    low = min(k, n - k)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(low + 1)) / 2 ** n)


# --- McNemar exact -----------------------------------------------------------------------------

@pytest.mark.parametrize("b, c, expected", [
    # b=2, c=8: 10 discordant items, X ~ Bin(10, 1/2);
    # P(X <= 2) = (C(10,0) + C(10,1) + C(10,2)) / 2^10 = (1 + 10 + 45) / 1024 = 56/1024;
    # two-sided: 2 * 56/1024 = 112/1024 = 0.109375
    (2, 8, 0.109375),
    # b=0, c=5: P(X <= 0 | Bin(5, 1/2)) = 1/32; two-sided 2/32 = 0.0625
    (0, 5, 0.0625),
    # b=1, c=9: (1 + 10) / 1024 = 11/1024; two-sided 22/1024 = 0.021484375
    (1, 9, 0.021484375),
    # b=0, c=10: 2 * 1/1024 = 0.001953125
    (0, 10, 0.001953125),
    # b=c=3: P(X <= 3 | Bin(6, 1/2)) = (1+6+15+20)/64 = 42/64 > 1/2, so 2*42/64 > 1 -> capped at 1
    (3, 3, 1.0),
    # b=c=0: no discordant item, no evidence either way
    (0, 0, 1.0),
    # b=4, c=5: P(X <= 4 | Bin(9, 1/2)) = (1+9+36+84+126)/512 = 256/512; two-sided 1.0
    (4, 5, 1.0),
    # b=3, c=12: P(X <= 3 | Bin(15, 1/2)) = (1+15+105+455)/32768 = 576/32768; x2 = 0.03515625
    (3, 12, 0.03515625),
])
def test_mcnemar_exact_hand_worked(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert mcnemar_exact(c, b) == pytest.approx(expected, rel=1e-12, abs=1e-15)  # symmetric


def test_mcnemar_exact_grid_matches_integer_binomial_sums():
    for b in range(0, 16):
        for c in range(0, 16):
            p = mcnemar_exact(b, c)
            assert p == pytest.approx(binom_two_sided_half(b, b + c), rel=1e-12, abs=1e-15)
            assert p == mcnemar_exact(c, b)
            assert 0.0 < p <= 1.0


def test_mcnemar_exact_only_discordant_counts_matter():
    # More evidence at the same split gives a smaller p (1:4 split at 5, 10, 20 discordant)
    p5, p10, p20 = mcnemar_exact(1, 4), mcnemar_exact(2, 8), mcnemar_exact(4, 16)
    assert p5 > p10 > p20
    assert p5 == pytest.approx(2 * (1 + 5) / 32)  # (C(5,0)+C(5,1))/2^5, two-sided


# --- Sign test ---------------------------------------------------------------------------------

def test_sign_test_hand_worked():
    # 9 wins, 1 loss: P(X <= 1 | Bin(10, 1/2)) = (1 + 10)/1024; two-sided 22/1024
    assert sign_test(9, 1) == pytest.approx(2 * (1 + 10) / 1024, rel=1e-12)
    assert sign_test(1, 9) == pytest.approx(2 * (1 + 10) / 1024, rel=1e-12)
    # 6 wins, 0 losses: 2 * 1/64
    assert sign_test(6, 0) == pytest.approx(2 / 64, rel=1e-12)
    # even split and no decided pair at all: 1.0
    assert sign_test(5, 5) == 1.0
    assert sign_test(0, 0) == 1.0


def test_sign_test_ties_never_enter():
    # Ties are dropped before the test: 9 wins, 1 loss and any number of ties is the same test as
    # 9 wins, 1 loss. The function takes only wins and losses, so count them from verdicts the
    # way a caller does and check the ties change nothing.
    for ties in (0, 1, 10, 1000):
        verdicts = ["win"] * 9 + ["loss"] * 1 + ["tie"] * ties
        wins, losses = verdicts.count("win"), verdicts.count("loss")
        assert sign_test(wins, losses) == pytest.approx(22 / 1024, rel=1e-12)


def test_sign_test_grid_matches_integer_binomial_sums():
    for w in range(0, 14):
        for lo in range(0, 14):
            assert sign_test(w, lo) == pytest.approx(binom_two_sided_half(w, w + lo),
                                                     rel=1e-12, abs=1e-15)


# --- Holm --------------------------------------------------------------------------------------

def test_holm_hand_worked_keeps_input_order():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max makes
    # the last 0.06; back in the input order [0.01, 0.04, 0.03, 0.005] -> [0.03, 0.06, 0.06, 0.02]
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # the same values in another order: the adjusted ones follow their p-values
    assert holm([0.005, 0.03, 0.04, 0.01]) == pytest.approx([0.02, 0.06, 0.06, 0.03])


def test_holm_caps_at_one_and_edge_cases():
    # sorted 0.2*3 = 0.6, 0.4*2 = 0.8, 0.7*1 = 0.7 -> monotone 0.8; input order [0.8, 0.6, 0.8]
    assert holm([0.4, 0.2, 0.7]) == pytest.approx([0.8, 0.6, 0.8])
    # sorted 0.3*3 = 0.9, 0.5*2 = 1.0, 0.6*1 = 0.6 -> running max 1.0 for the last; [1.0, 0.9, 1.0]
    assert holm([0.5, 0.3, 0.6]) == pytest.approx([1.0, 0.9, 1.0])
    # 0.6*2 = 1.2 capped at 1; 0.9*1 = 0.9 -> running max 1.0
    assert holm([0.6, 0.9]) == [1.0, 1.0]
    assert holm([0.03]) == pytest.approx([0.03])  # one test: nothing to correct
    assert holm([]) == []


def test_holm_equals_statsmodels_multipletests():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    for m in (2, 3, 7, 20):
        for _ in range(8):  # each multipletests call runs gc.collect(): few
            p = rng.random(m) ** 3  # many small ones, some ties after capping
            assert holm(list(p)) == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-12)
    assert holm(()) == []
    out = holm([0.001, 0.2, 0.5, 0.9, 0.04])
    assert all(0.0 <= p <= 1.0 for p in out)
    assert all(a >= p for a, p in zip(out, [0.001, 0.2, 0.5, 0.9, 0.04]))  # never below raw


# --- Paired permutation test -------------------------------------------------------------------

def brute_force_sign_flip_p(candidate, baseline) -> float:
    """Share of all 2^n sign flips of the per-item differences whose |sum| is at least the
    observed |sum| (integer data, so the comparison is exact; |mean| >= |observed mean|)."""
    d = [int(c) - int(b) for c, b in zip(candidate, baseline)]
    observed = abs(sum(d))
    hits = sum(abs(sum(s * x for s, x in zip(signs, d))) >= observed
               for signs in itertools.product((1, -1), repeat=len(d)))
    return hits / 2 ** len(d)


def test_permutation_p_identical_sides_is_one():
    assert permutation_p([0.3, 0.7, 1.2, 5.0], [0.3, 0.7, 1.2, 5.0]) == 1.0
    assert permutation_p([], []) == 1.0


@pytest.mark.parametrize("candidate, baseline", [
    # all 8 differences positive: only the identity and the all-flipped reach |sum| 36 -> 2/256
    ([1, 2, 3, 4, 5, 6, 7, 8], [0] * 8),
    # mixed signs, ties and zero differences (a zero flips onto itself, counted twice as scipy does)
    ([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], [2, 1, 1, 2, 3, 5, 2, 4, 6, 1]),
    # n = 13: the largest n scipy still enumerates (2^13 = 8192 <= 9999 resamples)
    ([5, 3, 8, 2, 7, 7, 4, 9, 1, 6, 5, 4, 8], [4, 3, 6, 3, 5, 7, 5, 6, 2, 4, 5, 2, 7]),
    # a small effect, p near 1
    ([1, 0, 2, 1, 0, 3], [0, 1, 1, 2, 0, 2]),
])
def test_permutation_p_exact_matches_brute_force(candidate, baseline):
    n = len(candidate)
    assert 2 ** n <= N_PERMUTATIONS  # so scipy enumerates every sign flip
    expected = brute_force_sign_flip_p(candidate, baseline)
    assert permutation_p(candidate, baseline) == pytest.approx(expected, rel=1e-12)
    # exact: the seed does not matter
    assert permutation_p(candidate, baseline, seed=1) == pytest.approx(expected, rel=1e-12)
    # two-sided: swapping the sides gives the same p
    assert permutation_p(baseline, candidate) == pytest.approx(expected, rel=1e-12)


def test_permutation_p_first_case_by_hand():
    # d = 1..8, sum 36: a flip reaches |sum| >= 36 only with every sign + or every sign -
    assert permutation_p(list(range(1, 9)), [0] * 8) == pytest.approx(2 / 256)


def test_permutation_p_sampled_is_seeded_and_close_to_exact():
    # n = 16: 2^16 > 9999, so scipy samples sign flips; compare to an exact enumeration done
    # here with numpy (65536 x 16) within 4 Monte Carlo standard errors of 9999 resamples.
    rng = np.random.default_rng(42)
    baseline = rng.integers(0, 10, size=16)
    candidate = baseline + rng.integers(-2, 4, size=16)
    d = (candidate - baseline).astype(np.int64)
    signs = 1 - 2 * ((np.arange(2 ** 16)[:, None] >> np.arange(16)) & 1)
    exact = float(np.mean(np.abs(signs @ d) >= abs(d.sum())))
    p = permutation_p(candidate.tolist(), baseline.tolist(), seed=7)
    se = math.sqrt(exact * (1 - exact) / N_PERMUTATIONS)
    assert abs(p - exact) <= 4 * se + 1 / N_PERMUTATIONS
    assert 0.0 < exact < 1.0  # a case that tests something
    assert permutation_p(candidate.tolist(), baseline.tolist(), seed=7) == p  # reproducible


# --- Minimum detectable effect and the sd behind it --------------------------------------------

def test_mde_matches_normal_approximation_for_large_n():
    z = NormalDist().inv_cdf
    for sd in (0.3, 1.0, 2.5):
        n = 400
        normal = (z(1 - 0.05 / 2) + z(0.8)) * sd / math.sqrt(n)  # (1.95996 + 0.84162)/20 * sd
        mde = min_detectable_effect(sd, n)
        # the t-based MDE is a little larger than the normal one (heavier tails), within 2%
        assert normal <= mde <= normal * 1.02
    # other alpha and power, same formula
    normal = (z(1 - 0.01 / 2) + z(0.9)) * 1.0 / math.sqrt(1000)
    assert min_detectable_effect(1.0, 1000, alpha=0.01, power=0.9) == pytest.approx(normal,
                                                                                    rel=0.02)


def test_mde_shrinks_with_n_and_scales_with_sd():
    mdes = [min_detectable_effect(1.0, n) for n in (2, 3, 5, 10, 30, 100, 400, 2000)]
    assert all(a > b for a, b in zip(mdes, mdes[1:]))
    assert min_detectable_effect(2.0, 50) == pytest.approx(2 * min_detectable_effect(1.0, 50))
    assert min_detectable_effect(1.0, 1) is None
    assert min_detectable_effect(1.0, 0) is None
    assert min_detectable_effect(0.0, 50) == 0.0
    assert min_detectable_effect(0, 5) == 0.0


def test_difference_sd_binary_is_sqrt_of_discordant_share():
    # 10 items, 3 discordant (positions 1, 2 and 7): sd = sqrt(3/10)
    candidate = [1, 1, 0, 0, 1, 1, 0, 1, 0, 1]
    baseline = [1, 0, 1, 0, 1, 1, 0, 0, 0, 1]
    sd, why = difference_sd(candidate, baseline)
    assert sd == pytest.approx(math.sqrt(0.3))
    assert "discordant" in why and "30.0%" in why
    # under equal accuracy (mean difference 0), E[d^2] = discordant share is the variance
    d = np.array(candidate) - np.array(baseline)
    assert sd ** 2 == pytest.approx(np.mean(d ** 2))
    assert difference_sd([1, 0, 1], [1, 0, 1])[0] == 0.0
    assert difference_sd([], [])[0] == 0.0


def test_difference_sd_continuous_is_sample_sd():
    c, b = [0.5, 0.9, 0.2, 0.7], [0.4, 0.4, 0.3, 0.7]
    sd, why = difference_sd(c, b)
    d = [0.1, 0.5, -0.1, 0.0]  # mean 0.125; squared deviations sum 0.2075 over 3
    assert sd == pytest.approx(math.sqrt(0.2075 / 3))
    assert sd == pytest.approx(float(np.std(d, ddof=1)))
    assert "observed sd" in why
    assert difference_sd([0.5], [0.2])[0] == 0.0


# --- Paired bootstrap CI: coverage on synthetic data with a known effect -----------------------

TRUE_DIFF = 0.05


def simulate_pairs(m: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """m datasets of n paired 0/1 outcomes. Each item has a difficulty shared by both sides: half
    the items are hard (p ~ U(0.02, 0.12)), half easy (p ~ U(0.78, 0.90)); the baseline is right
    with probability p, the candidate with p + 0.05, independently given p. The true mean
    difference is therefore exactly 0.05, and the two sides are strongly correlated (r ~ 0.6, as
    two models on one benchmark are), so an unpaired interval would be far too wide."""
    rng = np.random.default_rng(seed)
    easy = rng.random((m, n)) < 0.5
    p = np.where(easy, rng.uniform(0.78, 0.90, (m, n)), rng.uniform(0.02, 0.12, (m, n)))
    baseline = (rng.random((m, n)) < p).astype(float)
    candidate = (rng.random((m, n)) < p + TRUE_DIFF).astype(float)
    return candidate, baseline


def coverage(m: int, n: int, seed: int) -> float:
    candidate, baseline = simulate_pairs(m, n, seed)
    hits = 0
    for i in range(m):
        # each dataset its own bootstrap seed, so the datasets' bootstrap errors are independent
        r = paired_difference(candidate[i], baseline[i], seed=1000 + i)
        assert r["n"] == n and r["ci_low"] <= r["value"] <= r["ci_high"]
        hits += r["ci_low"] <= TRUE_DIFF <= r["ci_high"]
    return hits / m


def test_paired_bootstrap_ci_covers_true_difference_at_n300():
    """95% paired percentile bootstrap CI over M = 400 seeded datasets of n = 300 pairs.

    Tolerance: 3 simulation standard errors, 3 * sqrt(.95 * .05 / 400) = 0.033, plus 0.01 for
    the bootstrap's own Monte Carlo error (2000 resamples per CI), so coverage in 0.95 +/- 0.043.
    Measured while writing this test (2000 datasets each, three seeds): 0.951, 0.959, 0.957, i.e.
    ~0.955 at n = 300; the seed below gives 0.9575. (The interval is closed, and 0.05 = 15/300 is
    a possible mean, so an endpoint now and then lands exactly on the true value and counts as
    covering it.) As a check that the test bites: the same data with an unpaired bootstrap (each
    side resampled on its own) covered 0.995, just outside the upper bound 0.993. (~1.5 s.)"""
    m = 400
    cov = coverage(m, 300, seed=20240601)
    tol = 3 * math.sqrt(0.95 * 0.05 / m) + 0.01
    assert abs(cov - 0.95) <= tol, cov


def test_paired_bootstrap_ci_small_n_is_computed():
    """n = 32: the percentile bootstrap under-covers at small n. Measured while writing this test
    (4000 datasets each, three seeds): 0.927, 0.929, 0.925, i.e. ~0.93 at n = 32 against the
    nominal 0.95; the 400 datasets below give 0.9375. Nothing hard is asserted about it beyond a
    sane range."""
    cov = coverage(400, 32, seed=20240602)
    assert 0.80 <= cov <= 1.0, cov


def test_paired_difference_edges_and_seed():
    assert paired_difference([], []) == {"value": None, "n": 0, "ci_low": None, "ci_high": None}
    same = paired_difference([1, 0, 1, 1], [1, 0, 1, 1])
    assert same == {"value": 0.0, "n": 4, "ci_low": 0.0, "ci_high": 0.0}
    c, b = simulate_pairs(1, 50, seed=3)
    r1, r2 = paired_difference(c[0], b[0], seed=5), paired_difference(c[0], b[0], seed=5)
    assert r1 == r2
    assert r1["value"] == pytest.approx(float(np.mean(c[0] - b[0])))
    # the order of the items does not change the interval (differences are sorted first)
    perm = np.random.default_rng(0).permutation(50)
    assert paired_difference(c[0][perm], b[0][perm], seed=5) == r1


# --- McNemar under H0: false-positive rate -----------------------------------------------------

def test_mcnemar_false_positive_rate_under_h0_at_most_alpha():
    """A/A data: K = 2000 seeded datasets of n = 200 items, both sides right with the same
    per-item probability p ~ U(0.05, 0.95), independently given p. The exact test is
    conservative, so the share with p < 0.05 must be <= 0.05 + 2 simulation SEs
    (2 * sqrt(.05 * .95 / 2000) = 0.0097). Measured with this seed: 0.0365."""
    k, n, alpha = 2000, 200, 0.05
    rng = np.random.default_rng(99)
    p = rng.uniform(0.05, 0.95, size=(k, n))
    a = rng.random((k, n)) < p
    b = rng.random((k, n)) < p
    only_a = (a & ~b).sum(axis=1)
    only_b = (b & ~a).sum(axis=1)
    cache: dict[tuple[int, int], float] = {}
    rejected = 0
    for x, y in zip(only_a.tolist(), only_b.tolist()):
        key = (min(x, y), max(x, y))
        if key not in cache:
            cache[key] = mcnemar_exact(*key)
        rejected += cache[key] < alpha
    rate = rejected / k
    assert rate <= alpha + 2 * math.sqrt(alpha * (1 - alpha) / k), rate
    assert rate > 0.0  # the test does reject sometimes: it is not trivially never significant
