"""Means (accuracy, ROUGE, margins) with a seeded percentile bootstrap CI, and a suite average whose CI resamples each
task independently (stratified), so small tasks carry their own uncertainty into the average.

One order everywhere: scores are sorted before resampling and tasks taken by name, so a CI
depends only on the scores themselves, never on the order a caller read them in (the terminal,
the leaderboard and a cached rerun all print the same interval)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

N_BOOT = 2000


def _ci(boot: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1 - level) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return float(low), float(high)


def mean_ci(scores: list[float], *, seed: int = 1234, level: float = 0.95) -> dict:
    """{'value', 'n', 'ci_low', 'ci_high'}: the mean of per-sample values (0/1 for accuracy)."""
    x = np.asarray(scores, dtype=float)
    x = np.sort(x[~np.isnan(x)])  # None/NaN: no value (e.g. a judge reply that did not parse)
    n = len(x)
    if n == 0:
        return {"value": None, "n": 0, "ci_low": None, "ci_high": None}
    rng = np.random.default_rng(seed)
    boot = x[rng.integers(0, n, size=(N_BOOT, n))].mean(axis=1)
    low, high = _ci(boot, level)
    return {"value": float(x.mean()), "n": n, "ci_low": low, "ci_high": high}


def suite_average(per_task: Mapping[str, Sequence[float]], *, seed: int = 1234,
                  level: float = 0.95) -> dict:
    """Macro average over tasks (task key -> scores); n is the number of tasks, n_samples the
    samples behind them."""
    per_task = [np.sort(x[~np.isnan(x)]) for x in (np.asarray(per_task[k], dtype=float)
                                                   for k in sorted(per_task))]
    per_task = [x for x in per_task if len(x)]  # None/NaN (no value) dropped, as in mean_ci
    if not per_task:
        return {"value": None, "n": 0, "ci_low": None, "ci_high": None, "n_samples": 0}
    rng = np.random.default_rng(seed)
    boots = [s[rng.integers(0, len(s), size=(N_BOOT, len(s)))].mean(axis=1) for s in per_task]
    boot = np.mean(boots, axis=0)
    low, high = _ci(boot, level)
    return {
        "value": float(np.mean([s.mean() for s in per_task])),
        "n": len(per_task),
        "ci_low": low,
        "ci_high": high,
        "n_samples": int(sum(len(s) for s in per_task)),
    }


def paired_difference(candidate: Sequence[float], baseline: Sequence[float], *, seed: int = 1234,
                      level: float = 0.95) -> dict:
    """The mean of candidate - baseline over the same items, with a seeded paired bootstrap CI
    (items resampled together, so what the two share cancels)."""
    d = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    if len(d) == 0:
        return {"value": None, "n": 0, "ci_low": None, "ci_high": None}
    d = np.sort(d)
    rng = np.random.default_rng(seed)
    low, high = _ci(d[rng.integers(0, len(d), size=(N_BOOT, len(d)))].mean(axis=1), level)
    return {"value": float(d.mean()), "n": len(d), "ci_low": low, "ci_high": high}


def headline(metrics: Mapping[str, dict]) -> tuple[str, dict]:
    """A task's headline metric (name, {value, n, ci...}): its first scorer's first metric.
    (An engine task's own numbers sit under "engine", beside bench's.)"""
    return next((k, v) for k, v in metrics.items() if k != "engine")
