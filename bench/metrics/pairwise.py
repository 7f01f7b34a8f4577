"""Pairwise judging of a candidate against a baseline: each item judged in both answer orders,
combined into win/tie/loss; win rate, a length-controlled win rate and the judge's flip rate,
each with n and a seeded bootstrap 95% CI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.special import expit

from bench.metrics.stats import N_BOOT, mean_ci

OUTCOME_SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
_VERDICTS = ("A", "B", "TIE")


class PairVerdict(NamedTuple):
    outcome: str  # "win" | "loss" | "tie", from the candidate's side
    flipped: bool  # the judge named the same position both times: its choice followed the order


def order_verdicts(first: str, second: str) -> PairVerdict:
    """Combine one item's two judge verdicts ("A", "B" or "tie"; A = the answer shown first).

    first call: A = candidate, B = baseline; second call: A = baseline, B = candidate.
    outcome: "win" only if both calls prefer the candidate (first "A", second "B"); "loss" only
    if both prefer the baseline (first "B", second "A"); everything else is "tie" (a tie in
    either call, or a verdict that flips with the order).
    flipped: both calls named the same position ("A","A" or "B","B"), i.e. the judge picked a
    position, not an answer; such an item counts as a tie."""
    v1, v2 = first.strip().upper(), second.strip().upper()
    for name, v in (("first", first), ("second", second)):
        if v.strip().upper() not in _VERDICTS:
            raise ValueError(f"order_verdicts: {name} verdict {v!r} is not one of 'A', 'B', 'tie'")
    if (v1, v2) == ("A", "B"):
        return PairVerdict("win", False)
    if (v1, v2) == ("B", "A"):
        return PairVerdict("loss", False)
    return PairVerdict("tie", v1 == v2 and v1 != "TIE")


def _scores(outcomes: Sequence[str]) -> np.ndarray:
    bad = [(i, o) for i, o in enumerate(outcomes) if o not in OUTCOME_SCORE]
    if bad:
        i, o = bad[0]
        raise ValueError(f"outcome {o!r} at item {i} is not one of {sorted(OUTCOME_SCORE)} "
                         f"({len(bad)} bad in all); combine verdicts with order_verdicts first")
    return np.asarray([OUTCOME_SCORE[o] for o in outcomes], dtype=float)


def win_rate(outcomes: Sequence[str], seed: int = 1234, *, level: float = 0.95) -> dict:
    """{'value', 'n', 'ci_low', 'ci_high', 'wins', 'ties', 'losses', 'win_share', 'tie_share',
    'loss_share'}: value = (wins + ties/2) / n, CI by the bootstrap of stats.mean_ci."""
    s = _scores(outcomes)
    n = len(s)
    counts = {"wins": int((s == 1).sum()), "ties": int((s == 0.5).sum()),
              "losses": int((s == 0).sum())}
    shares = {f"{name}_share": (counts[key] / n if n else None)
              for name, key in (("win", "wins"), ("tie", "ties"), ("loss", "losses"))}
    return {**mean_ci(list(s), seed=seed, level=level), **counts, **shares}


def _fit_logistic(z: np.ndarray, y: np.ndarray, l2: float, iters: int = 100) -> np.ndarray:
    """Rows of (intercept, slope) minimising sum(log(1+e^eta) - y*eta) + l2/2*|theta|^2 with
    eta = intercept + slope*z, one fit per row of z, y (soft labels y in [0, 1]); damped Newton."""
    theta = np.zeros((z.shape[0], 2))

    def loss(t: np.ndarray, rows: np.ndarray) -> np.ndarray:
        eta = t[:, :1] + t[:, 1:] * z[rows]
        return (np.logaddexp(0, eta) - y[rows] * eta).sum(axis=1) + l2 / 2 * (t * t).sum(axis=1)

    active = np.arange(len(theta))
    for _ in range(iters):
        th, zr, yr = theta[active], z[active], y[active]
        p = expit(th[:, :1] + th[:, 1:] * zr)
        r, w = p - yr, p * (1 - p)
        g0, g1 = r.sum(1) + l2 * th[:, 0], (r * zr).sum(1) + l2 * th[:, 1]
        h00, h01, h11 = w.sum(1) + l2, (w * zr).sum(1), (w * zr * zr).sum(1) + l2
        det = h00 * h11 - h01 * h01
        step = -np.stack([(h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det], axis=1)
        f0 = loss(th, active)
        tol = 1e-12 * (1 + np.abs(f0))
        t, todo = np.ones(len(th)), np.arange(len(th))
        for _ in range(30):  # halve the step on rows where it would not lower the loss
            new = loss(th[todo] + t[todo, None] * step[todo], active[todo])
            todo = todo[new > f0[todo] + tol[todo]]
            if len(todo) == 0:
                break
            t[todo] /= 2
        step *= t[:, None]
        theta[active] = th + step
        active = active[np.abs(step).max(axis=1) > 1e-8]
        if len(active) == 0:
            break
    return theta


def length_controlled_win_rate(outcomes: Sequence[str], length_diff: Sequence[float],
                               seed: int = 1234, *, l2: float = 1e-2,
                               level: float = 0.95) -> dict:
    """The win rate the candidate would have at equal answer length (AlpacaEval 2's idea,
    simplified): {'value', 'n', 'ci_low', 'ci_high', 'raw_win_rate', 'length_coef', 'note'}.

    length_diff is candidate chars - baseline chars per item. Fit P(candidate preferred) =
    sigmoid(b0 + b1 * tanh(length_diff / sd(length_diff))) by maximum likelihood with soft labels
    (win 1, tie 0.5, loss 0: a tie is half a win and half a loss) and a small L2 penalty `l2` on
    (b0, b1) so that one-sided or length-separated data still give finite values; tanh bounds
    the pull of outliers, as in AlpacaEval. value = the mean prediction with the length term set
    to 0, which here is sigmoid(b0). CI: seeded bootstrap of items, refitting each replicate
    (sd fixed from the full sample). When every length_diff is equal the length term is dropped
    and value is the (lightly shrunk) raw win rate."""
    y = _scores(outcomes)
    d = np.asarray(length_diff, dtype=float).reshape(-1)
    if len(d) != len(y):
        raise ValueError(f"length_controlled_win_rate: {len(y)} outcomes but {len(d)} "
                         "length differences; pass one per item")
    if not np.isfinite(d).all():
        raise ValueError("length_controlled_win_rate: length differences must be finite")
    n = len(y)
    out = {"value": None, "n": n, "ci_low": None, "ci_high": None, "raw_win_rate": None,
           "length_coef": None, "note": None}
    if n == 0:
        return {**out, "note": "no items"}
    sd = float(d.std())
    z = np.tanh(d / sd) if sd > 0 else np.zeros(n)
    note = None if sd > 0 else "all length differences are equal; the length term is dropped"
    order = np.lexsort((y, z))
    z, y = z[order], y[order]
    b0, b1 = _fit_logistic(z[None], y[None], l2)[0]
    idx = np.random.default_rng(seed).integers(0, n, size=(N_BOOT, n))
    boot = expit(_fit_logistic(z[idx], y[idx], l2)[:, 0])
    alpha = (1 - level) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return {**out, "value": float(expit(b0)), "ci_low": float(low), "ci_high": float(high),
            "raw_win_rate": float(y.mean()), "length_coef": float(b1), "note": note}


def flip_rate(flipped: Sequence[bool], *, seed: int = 1234, level: float = 0.95) -> dict:
    """{'rate', 'n', 'ci_low', 'ci_high'}: the share of items whose verdict followed the answer
    order (see order_verdicts), with the bootstrap CI of stats.mean_ci."""
    r = mean_ci([float(bool(f)) for f in flipped], seed=seed, level=level)
    return {"rate": r["value"], "n": r["n"], "ci_low": r["ci_low"],
            "ci_high": r["ci_high"]}
