"""Paired tests for a candidate against a baseline on the same items, taken from scipy and
statsmodels rather than re-derived:

- 0/1 metrics (accuracy, a rule pass): McNemar's exact test, which looks only at the discordant
  items (statsmodels `mcnemar(exact=True)`, a binomial test on them);
- pairwise judge outcomes: the sign test on wins vs losses, ties left out (scipy `binomtest`);
- any other metric (ROUGE, judge scores, margins): a paired permutation test of the mean
  difference, signs of the per-item differences flipped at random (scipy `permutation_test`);
- many tests at once: Holm's step-down correction (statsmodels `multipletests`);
- the smallest effect n items can detect (statsmodels `TTestPower`, normal-theory for a paired
  mean): MDE = d(n, alpha, power) * sd of the per-item differences. For a 0/1 metric the sd is
  taken as sqrt(share of discordant items), the variance of a paired difference when the two
  sides are equally good (so the assumption is "the observed discordance holds"); for outcomes of
  pairwise verdicts, sqrt(share of decided items) / 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

N_PERMUTATIONS = 9999


def is_binary(*columns: Sequence[float]) -> bool:
    return all(v in (0.0, 1.0) for col in columns for v in col)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b items only the baseline got right, c only the candidate."""
    from statsmodels.stats.contingency_tables import mcnemar

    if b + c == 0:
        return 1.0
    return float(mcnemar([[0, b], [c, 0]], exact=True).pvalue)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided sign test p-value on wins vs losses (ties carry no sign)."""
    from scipy.stats import binomtest

    if wins + losses == 0:
        return 1.0
    return float(binomtest(wins, wins + losses, 0.5).pvalue)


def permutation_p(candidate: Sequence[float], baseline: Sequence[float], *, seed: int = 1234) -> float:
    """Two-sided p-value of a paired permutation test of the mean difference (exact when
    2**n <= N_PERMUTATIONS + 1, else N_PERMUTATIONS seeded sign flips)."""
    from scipy.stats import permutation_test

    d = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    if len(d) < 2 or not np.any(d):  # one item cannot be permuted: no evidence either way
        return 1.0
    res = permutation_test((np.asarray(candidate, float), np.asarray(baseline, float)),
                           lambda x, y, axis: np.mean(x - y, axis=axis), vectorized=True,
                           permutation_type="samples", n_resamples=N_PERMUTATIONS,
                           alternative="two-sided", random_state=np.random.default_rng(seed))
    return float(min(1.0, res.pvalue))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: the k-th smallest times (m - k + 1), made
    monotone, at most 1. The same values as statsmodels' multipletests(method="holm"), which
    also runs a full gc.collect() per call (seconds per gate in a process holding models)."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1)))
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return [float(v) for v in out]


def min_detectable_effect(sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """The smallest true mean difference a two-sided paired test at `alpha` detects with `power`
    on n items whose per-item differences have standard deviation `sd` (None below 2 items)."""
    if n < 2:
        return None
    return 0.0 if sd == 0 else _standardized_effect(n, alpha, power) * sd


@lru_cache(maxsize=4096)
def _standardized_effect(n: int, alpha: float, power: float) -> float:
    from statsmodels.stats.power import TTestPower

    return float(TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power,
                                          alternative="two-sided"))


def difference_sd(candidate: Sequence[float], baseline: Sequence[float]) -> tuple[float, str]:
    """(sd of per-item differences used for the MDE, the assumption in words)."""
    c, b = np.asarray(candidate, float), np.asarray(baseline, float)
    if is_binary(c, b):
        share = float(np.mean(c != b)) if len(c) else 0.0
        return math.sqrt(share), f"sd² = share of discordant items ({share:.1%} observed)"
    sd = float(np.std(c - b, ddof=1)) if len(c) > 1 else 0.0
    return sd, f"sd = observed sd of per-item differences ({sd:.3g})"
