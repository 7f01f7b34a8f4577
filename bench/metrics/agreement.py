"""Agreement between two raters (an LLM judge and human labels): Cohen's kappa for labels,
Spearman's rho for scores, each with a seeded paired bootstrap 95% CI (items resampled whole).

As in stats.py, pairs are sorted before resampling, so a CI depends only on the pairs, never on
the order a caller read them in. Bootstrap replicates where the statistic is undefined (one label
or a constant column drawn) are dropped from the interval."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata, spearmanr

from bench.metrics.stats import N_BOOT


def _nan_ci(boot: np.ndarray, level: float) -> tuple[float | None, float | None]:
    boot = boot[np.isfinite(boot)]
    if len(boot) == 0:
        return None, None
    alpha = (1 - level) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return float(low), float(high)


def _same_length(a: Sequence, b: Sequence, what: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{what}: the two raters need one value per item each, got {len(a)} and "
                         f"{len(b)}; pass the same items in both")


def _kappa_rows(a: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed, expected agreement and kappa along the last axis (label codes 0..k-1)."""
    observed = (a == b).mean(axis=-1)
    expected = sum((a == c).mean(axis=-1) * (b == c).mean(axis=-1) for c in range(k))
    expected = np.asarray(expected, dtype=float)
    undefined = expected >= 1 - 1e-12
    kappa = np.where(undefined, np.nan, (observed - expected) / np.where(undefined, 1, 1 - expected))
    return observed, expected, kappa


def cohen_kappa(a: Sequence[str], b: Sequence[str], labels: Sequence[str] | None = None, *,
                seed: int = 1234, level: float = 0.95) -> dict:
    """Unweighted Cohen's kappa of two raters' labels over the same items:
    {'kappa', 'n', 'observed', 'expected', 'ci_low', 'ci_high', 'note'}.

    kappa = (observed - expected) / (1 - expected), expected = sum over labels of the product of
    the two raters' label shares. When expected is 1 (both raters used one and the same label)
    kappa is undefined: it is None and 'note' says why. `labels` (optional) fixes the label set;
    a value outside it is an error."""
    _same_length(a, b, "cohen_kappa")
    n = len(a)
    out = {"kappa": None, "n": n, "observed": None, "expected": None, "ci_low": None,
           "ci_high": None, "note": None}
    if n == 0:
        return {**out, "note": "no items"}
    names = sorted(set(a) | set(b)) if labels is None else list(labels)
    code = {name: i for i, name in enumerate(names)}
    for rater, values in (("a", a), ("b", b)):
        unknown = sorted({v for v in values if v not in code}, key=str)
        if unknown:
            raise ValueError(f"cohen_kappa: rater {rater} used labels {unknown} outside "
                             f"labels={names}; add them to labels or fix the data")
    pairs = np.array([(code[x], code[y]) for x, y in zip(a, b)], dtype=int)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    observed, expected, kappa = _kappa_rows(pairs[:, 0], pairs[:, 1], len(names))
    out.update(observed=float(observed), expected=float(expected))
    if np.isnan(kappa):
        return {**out, "note": "expected agreement is 1 (both raters used a single label); "
                               "kappa is undefined"}
    idx = np.random.default_rng(seed).integers(0, n, size=(N_BOOT, n))
    _, _, boot = _kappa_rows(pairs[idx, 0], pairs[idx, 1], len(names))
    low, high = _nan_ci(boot, level)
    return {**out, "kappa": float(kappa), "ci_low": low, "ci_high": high}


def _rank_corr_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho along the last axis: Pearson's r of average ranks; nan where constant."""
    rx = rankdata(x, axis=-1)
    ry = rankdata(y, axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    denom = np.sqrt((rx * rx).sum(axis=-1) * (ry * ry).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (rx * ry).sum(axis=-1) / denom, np.nan)


def spearman(x: Sequence[float], y: Sequence[float], *, seed: int = 1234,
             level: float = 0.95) -> dict:
    """Spearman's rank correlation (ties get average ranks) of two raters' scores over the same
    items: {'rho', 'p_value', 'n', 'ci_low', 'ci_high', 'note'}, rho and p from
    scipy.stats.spearmanr. With fewer than 3 items or a constant column, rho is None."""
    _same_length(x, y, "spearman")
    n = len(x)
    out = {"rho": None, "p_value": None, "n": n, "ci_low": None, "ci_high": None, "note": None}
    xy = np.asarray([x, y], dtype=float).reshape(2, n).T
    if not np.isfinite(xy).all():
        raise ValueError("spearman: scores must be finite numbers; drop or fix NaN/inf items")
    if n < 3:
        return {**out, "note": f"needs at least 3 items, got {n}"}
    if np.ptp(xy[:, 0]) == 0 or np.ptp(xy[:, 1]) == 0:
        return {**out, "note": "a constant column has no ranking; rho is undefined"}
    xy = xy[np.lexsort((xy[:, 1], xy[:, 0]))]
    res = spearmanr(xy[:, 0], xy[:, 1])
    idx = np.random.default_rng(seed).integers(0, n, size=(N_BOOT, n))
    low, high = _nan_ci(_rank_corr_rows(xy[idx, 0], xy[idx, 1]), level)
    return {**out, "rho": float(res.statistic), "p_value": float(res.pvalue),
            "ci_low": low, "ci_high": high}
