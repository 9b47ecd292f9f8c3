"""Statistics every stage's numbers share: bootstrap SEs and CIs (plain and two-level: seeds, then samples), the
minimum detectable difference, Cohen's κ (judge agreement) and exact binomial tails and Clopper-Pearson intervals
(the onset rule). Seeds are the unit of replication; samples within a seed are not independent runs.

    from rhlab import stats
    stats.bootstrap_se([0.2, 0.4, 0.9])                       # SE of a mean by resampling items
    stats.bootstrap_ci(records, fn)                           # 95 % CI of any statistic of a list of records
    stats.diff_ci([[1, 0, 1], [0, 0, 1]], [[0, 0], [0, 1]])   # arm A - arm B, seeds then samples resampled
    stats.mean_ci([[1, 0, 1], [0, 0, 1]])                     # one arm's seed mean with its two-level CI
    stats.mdd(0.05)                                           # smallest difference a test at alpha 0.05, power 0.8 sees

A seed's data is a list of per-sample values (0/1 flags or scores), or a list of such lists ("strata", e.g. the evals
of a checkpoint, or checkpoints each holding evals): a stratified seed's value is the unweighted mean of its strata's
values, and only the samples inside each stratum are resampled (strata are fixed, as in MGS = mean of eval rates).

All resampling is seeded (same inputs → same numbers), so reports regenerate byte-identically.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Callable, Sequence

import numpy as np

N_BOOT = 2000


def cluster_means(values: Sequence[float], ids: Sequence[str]) -> list[float]:
    """One value per id — the mean of its values — in first-seen order: several answers to one question are one
    unit of a bootstrap or an SE, not several independent ones."""
    groups: dict[str, list[float]] = {}
    for v, i in zip(values, ids):
        groups.setdefault(i, []).append(v)
    return [sum(g) / len(g) for g in groups.values()]


def mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def bootstrap_se(values: Sequence[float], n_boot: int = N_BOOT, seed: int = 0) -> float | None:
    """SE of the mean of `values` by resampling them; None for fewer than 2 values (no spread to resample)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    return float(means.std(ddof=1))


def bootstrap_ci(records: Sequence[Any], fn: Callable[[list[Any]], float | None], n_boot: int = N_BOOT,
                 alpha: float = 0.05, seed: int = 0) -> tuple[float, float] | None:
    """Percentile CI of `fn(records)` over resamples of the records (resamples where fn is None are skipped)."""
    if len(records) < 2:
        return None
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        v = fn([records[i] for i in rng.integers(0, len(records), size=len(records))])
        if v is not None and not math.isnan(v):
            vals.append(v)
    if not vals:
        return None
    lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


# --- seed-level data: a seed is a list of samples, or a list of strata (each a list of samples or of strata) ---------


def _prep(node: Any) -> Any:
    """A seed's data as a tree: leaves become float arrays, strata lists of trees (the first element decides)."""
    if isinstance(node, np.ndarray) and node.dtype != object:
        return node.astype(float, copy=False)
    node = list(node)
    if node and isinstance(node[0], (list, tuple, np.ndarray)):
        return [_prep(c) for c in node]
    return np.asarray(node, dtype=float)


def _n(node: Any) -> int:
    return int(node.size) if isinstance(node, np.ndarray) else sum(_n(c) for c in node)


def _leaves(node: Any) -> list[float]:
    return node.tolist() if isinstance(node, np.ndarray) else [v for c in node for v in _leaves(c)]


def _value(node: Any) -> float | None:
    if isinstance(node, np.ndarray):
        return float(node.mean()) if node.size else None
    vals = [v for v in (_value(c) for c in node) if v is not None]
    return float(np.mean(vals)) if vals else None


def _draws(node: Any, rng: np.random.Generator, k: int) -> np.ndarray:
    """`k` bootstrap draws of _value(node), resampling the samples inside each stratum."""
    if isinstance(node, np.ndarray):
        return node[rng.integers(0, node.size, size=(k, node.size))].mean(axis=1)
    kids = [c for c in node if _n(c)]
    return np.mean([_draws(c, rng, k) for c in kids], axis=0)


def _seed_draws(groups: Sequence[Sequence[Any]], rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """`n_boot` draws of seed_mean(groups): resample seeds, then (independently for each drawn copy of a seed)
    the samples within it."""
    groups = [g for g in map(_prep, groups) if _n(g)]
    out = np.zeros(n_boot)
    for _slot in range(len(groups)):
        picks = rng.integers(0, len(groups), size=n_boot)
        for i, g in enumerate(groups):
            mask = picks == i
            if mask.any():
                out[mask] += _draws(g, rng, int(mask.sum()))
    return out / len(groups)


def seed_mean(groups: Sequence[Sequence[Any]]) -> float | None:
    """The mean over seeds of each seed's value (each seed weighs the same, whatever its sample count)."""
    vals = [v for v in (_value(g) for g in map(_prep, groups) if _n(g)) if v is not None]
    return float(np.mean(vals)) if vals else None


def mean_ci(groups: Sequence[Sequence[Any]], n_boot: int = N_BOOT, alpha: float = 0.05,
            seed: int = 0) -> dict[str, Any] | None:
    """seed_mean(groups) with a percentile CI and SE from the two-level bootstrap (seeds, then samples). With one
    seed only the samples are resampled: the CI is a sampling CI, not one across seeds."""
    groups = [_prep(g) for g in groups]
    if not any(_n(g) for g in groups):
        return None
    d = _seed_draws(groups, np.random.default_rng(seed), n_boot)
    lo, hi = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    return {"mean": seed_mean(groups), "lo": float(lo), "hi": float(hi), "se": float(d.std(ddof=1)),
            "seeds": sum(1 for g in groups if _n(g)), "n": sum(_n(g) for g in groups)}


def diff_ci(a: Sequence[Sequence[Any]], b: Sequence[Sequence[Any]], n_boot: int = N_BOOT, alpha: float = 0.05,
            seed: int = 0) -> dict[str, Any] | None:
    """Difference seed_mean(a) - seed_mean(b) with a percentile CI from a two-level bootstrap (seeds, then samples),
    its bootstrap SE, and the minimum detectable difference at this n. `a` and `b` are per-seed lists of per-sample
    values (0/1 flags or scores), or of strata (see the module doc). None when either side has no samples.

    For 0/1 data the MDD uses at least the binomial SE at the pooled rate (kept off 0 and 1 by half a sample): when
    every sample agrees the bootstrap SE is 0, which would claim any difference detectable."""
    a, b = [_prep(g) for g in a], [_prep(g) for g in b]
    if not any(_n(g) for g in a) or not any(_n(g) for g in b):
        return None
    rng = np.random.default_rng(seed)
    d = _seed_draws(a, rng, n_boot) - _seed_draws(b, rng, n_boot)
    lo, hi = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    se = float(d.std(ddof=1))
    na, nb = sum(_n(g) for g in a), sum(_n(g) for g in b)
    xa, xb = [v for g in a for v in _leaves(g)], [v for g in b for v in _leaves(g)]
    se_mdd = se
    if all(v in (0.0, 1.0) for v in xa + xb):
        p = (sum(xa) + sum(xb)) / (na + nb)
        floor = 1.0 / (2 * min(na, nb))
        p = min(max(p, floor), 1 - floor)
        se_mdd = max(se, math.sqrt(p * (1 - p) * (1 / na + 1 / nb)))
    return {"diff": seed_mean(a) - seed_mean(b), "lo": float(lo), "hi": float(hi), "se": se,
            "mdd": mdd(se_mdd, alpha=alpha), "seeds": [sum(1 for g in a if _n(g)), sum(1 for g in b if _n(g))],
            "n": [na, nb]}


def paired_diff_ci(a: Sequence[dict[str, float]], b: Sequence[dict[str, float]], n_boot: int = N_BOOT,
                   alpha: float = 0.05, seed: int = 0) -> dict[str, Any] | None:
    """Like diff_ci, for two arms scored on the same items (each seed a dict item id → value): seeds are resampled
    on each side, the items once per draw and shared by both sides, so item difficulty — which both arms share —
    does not widen the CI. Only items every seed of both arms has are used. None with fewer than 2 such items."""
    a, b = [g for g in a if g], [g for g in b if g]
    if not a or not b:
        return None
    ids = sorted(set.intersection(*(set(g) for g in list(a) + list(b))))
    if len(ids) < 2:
        return None
    A = np.array([[g[i] for i in ids] for g in a], dtype=float)  # seeds x items
    B = np.array([[g[i] for i in ids] for g in b], dtype=float)
    rng = np.random.default_rng(seed)
    d = np.empty(n_boot)
    for k in range(n_boot):
        items = rng.integers(0, len(ids), size=len(ids))
        sa = rng.integers(0, A.shape[0], size=A.shape[0])
        sb = rng.integers(0, B.shape[0], size=B.shape[0])
        d[k] = A[np.ix_(sa, items)].mean() - B[np.ix_(sb, items)].mean()
    lo, hi = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    se = float(d.std(ddof=1))
    return {"diff": float(A.mean() - B.mean()), "lo": float(lo), "hi": float(hi), "se": se, "mdd": mdd(se, alpha),
            "seeds": [A.shape[0], B.shape[0]], "n": [A.size, B.size], "paired_items": len(ids)}


def mdd(se_diff: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable difference of a two-sided test at `alpha` with `power`, given the SE of the difference."""
    z = NormalDist().inv_cdf
    return (z(1 - alpha / 2) + z(power)) * se_diff


def binomial_mdd(p: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """MDD between two independent rates of n samples each around base rate p (for sizing specs before a run)."""
    if n <= 0:
        return None
    p = min(max(p, 1.0 / (2 * n)), 1 - 1.0 / (2 * n))  # a zero base rate still has sampling noise at the effect
    return mdd(math.sqrt(2 * p * (1 - p) / n), alpha, power)


def flags_from_rate(rate: float, n: int) -> list[int]:
    """0/1 flags with the given rate over n samples (for summaries written before per-sample flags were stored)."""
    k = int(round(rate * n))
    return [1] * k + [0] * (n - k)


def cohen_kappa(truth: Sequence[bool], pred: Sequence[bool]) -> float | None:
    """Cohen's κ of two binary raters (None for no items)."""
    n = len(truth)
    if n == 0:
        return None
    po = sum(a == b for a, b in zip(truth, pred)) / n
    pt, pp = sum(truth) / n, sum(pred) / n
    pe = pt * pp + (1 - pt) * (1 - pp)
    if pe >= 1.0:
        return 1.0 if po == 1.0 else 0.0
    return (po - pe) / (1 - pe)


def excludes_zero(ci: tuple[float, float] | dict | None) -> bool:
    if ci is None:
        return False
    lo, hi = (ci["lo"], ci["hi"]) if isinstance(ci, dict) else ci
    return lo > 0 or hi < 0


# --- exact binomial arithmetic (the onset rule's start-rate interval and count threshold) ---------------------------


def _log_pmf(n: int, p: float, k: int) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def binom_sf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) >= k), exact (summed from whichever tail is shorter)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if k > n // 2:
        return min(1.0, sum(math.exp(_log_pmf(n, p, i)) for i in range(k, n + 1)))
    return max(0.0, 1.0 - sum(math.exp(_log_pmf(n, p, i)) for i in range(0, k)))


def _bisect(f, lo: float, hi: float, iters: int = 80) -> float:
    """The root of an increasing f on [lo, hi]."""
    for _ in range(iters):
        mid = (lo + hi) / 2
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval of a binomial proportion (conservative: covers at least `level`)."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"clopper_pearson: need 0 <= successes <= n and n >= 1, got {successes}/{n}")
    a = (1 - level) / 2
    lo = 0.0 if successes == 0 else _bisect(lambda p: binom_sf(successes, n, p) - a, 0.0, 1.0)
    # upper: P(X <= successes | p) = a, i.e. P(X >= successes + 1 | p) = 1 - a (increasing in p)
    hi = 1.0 if successes == n else _bisect(lambda p: binom_sf(successes + 1, n, p) - (1 - a), 0.0, 1.0)
    return lo, hi
