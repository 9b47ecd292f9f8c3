"""rhlab.stats on constructed data where the answer is known: direction, coverage, the seed level, strata, MDD."""

import math

import numpy as np
import pytest

from rhlab import stats


def _flags(rng, p, n):
    return [int(v) for v in rng.random(n) < p]


def test_diff_ci_direction_and_point_estimate():
    rng = np.random.default_rng(1)
    a = [_flags(rng, 0.8, 200) for _ in range(3)]
    b = [_flags(rng, 0.2, 200) for _ in range(3)]
    d = stats.diff_ci(a, b)
    assert d["diff"] == pytest.approx(stats.seed_mean(a) - stats.seed_mean(b))
    assert 0.5 < d["lo"] < d["diff"] < d["hi"] < 0.7
    assert stats.excludes_zero(d)
    r = stats.diff_ci(b, a)  # the other way round: the mirror image
    assert r["hi"] < -0.5 and r["diff"] == pytest.approx(-d["diff"])
    assert d["seeds"] == [3, 3] and d["n"] == [600, 600]


def test_diff_ci_includes_zero_when_arms_are_the_same():
    rng = np.random.default_rng(2)
    a = [_flags(rng, 0.3, 50) for _ in range(3)]
    b = [_flags(rng, 0.3, 50) for _ in range(3)]
    d = stats.diff_ci(a, b)
    assert d["lo"] < 0 < d["hi"] and not stats.excludes_zero(d)


def test_diff_ci_coverage_on_simulated_arms():
    # true rates 0.3 vs 0.2, three seeds of 60 samples per arm, no seed effect: the 95 % CI must cover 0.1 at least
    # at the nominal rate. Resampling seeds and then samples counts sampling noise twice when seeds agree, so it is
    # conservative; it must not be wildly so (half-width under 1.5x the analytic 1.96 SE).
    rng = np.random.default_rng(3)
    hits, widths = 0, []
    reps = 200
    for r in range(reps):
        a = [_flags(rng, 0.3, 60) for _ in range(3)]
        b = [_flags(rng, 0.2, 60) for _ in range(3)]
        d = stats.diff_ci(a, b, n_boot=400, seed=r)
        hits += d["lo"] <= 0.1 <= d["hi"]
        widths.append((d["hi"] - d["lo"]) / 2)
    analytic = 1.96 * math.sqrt(0.3 * 0.7 / 180 + 0.2 * 0.8 / 180)
    assert hits / reps >= 0.93
    assert analytic < np.mean(widths) < 1.5 * analytic


def test_seeds_are_the_unit():
    # two seeds that disagree wildly: resampling seeds must widen the CI far beyond the pooled-binomial one
    a = [[1] * 90 + [0] * 10, [1] * 10 + [0] * 90]
    b = [[1] * 50 + [0] * 50, [1] * 50 + [0] * 50]
    d = stats.diff_ci(a, b)
    pooled_se = math.sqrt(0.25 / 200 + 0.25 / 200)
    assert d["diff"] == pytest.approx(0.0)
    assert d["se"] > 3 * pooled_se
    # each seed weighs the same whatever its sample count
    assert stats.seed_mean([[1, 1, 1, 1, 1, 1, 1, 1], [0, 0]]) == pytest.approx(0.5)


def test_strata_are_fixed_and_averaged_unweighted():
    # one seed with two evals: MGS = mean of the two rates (1.0 and 0.0), not the pooled share 4/6
    seed = [[1, 1, 1, 1], [0, 0]]
    assert stats.seed_mean([seed]) == pytest.approx(0.5)
    m = stats.mean_ci([seed])
    assert m["lo"] == m["hi"] == pytest.approx(0.5)  # no sample-level spread inside either stratum
    assert m["n"] == 6 and m["seeds"] == 1
    # nested: checkpoints holding evals
    two_ckpt = [[[1, 1], [0, 0]], [[1, 1], [1, 1]]]  # checkpoint MGS 0.5 and 1.0
    assert stats.seed_mean([two_ckpt]) == pytest.approx(0.75)


def test_mean_ci_covers_and_is_deterministic():
    rng = np.random.default_rng(4)
    groups = [_flags(rng, 0.4, 100) for _ in range(4)]
    m = stats.mean_ci(groups)
    assert m["lo"] < m["mean"] < m["hi"] and m["lo"] < 0.4 < m["hi"]
    assert stats.mean_ci(groups) == m and stats.diff_ci(groups, groups[:2]) == stats.diff_ci(groups, groups[:2])
    assert stats.mean_ci([[], []]) is None and stats.diff_ci([[1]], [[]]) is None


def test_mdd_values():
    assert stats.mdd(0.05) == pytest.approx((1.959964 + 0.841621) * 0.05, rel=1e-5)
    # two rates of 100 around 0.5: sqrt(2 * .25 / 100) = 0.0707 -> 0.198
    assert stats.binomial_mdd(0.5, 100) == pytest.approx(0.198, abs=1e-3)
    assert stats.binomial_mdd(0.0, 100) > 0 and stats.binomial_mdd(0.3, 0) is None
    # MDD shrinks with n
    assert stats.binomial_mdd(0.2, 400) < stats.binomial_mdd(0.2, 100)


def test_mdd_is_not_zero_when_every_sample_agrees():
    d = stats.diff_ci([[0] * 10], [[0] * 10])
    assert d["se"] == 0.0 and d["lo"] == d["hi"] == 0.0
    assert d["mdd"] > 0.1  # ten samples a side cannot see a difference of a few points
    assert stats.diff_ci([[0] * 400], [[0] * 400])["mdd"] < d["mdd"]


def test_flags_from_rate_and_excludes_zero():
    f = stats.flags_from_rate(0.25, 8)
    assert len(f) == 8 and sum(f) == 2
    assert stats.excludes_zero((0.01, 0.2)) and stats.excludes_zero({"lo": -0.3, "hi": -0.01})
    assert not stats.excludes_zero((-0.01, 0.2)) and not stats.excludes_zero(None)


def test_bootstrap_se_and_ci():
    x = [0.0, 1.0] * 50
    se = stats.bootstrap_se(x)
    assert se == pytest.approx(0.05, rel=0.15)  # sd 0.5 / sqrt(100)
    assert stats.bootstrap_se([1.0]) is None
    lo, hi = stats.bootstrap_ci(x, lambda r: sum(r) / len(r))
    assert lo < 0.5 < hi and hi - lo == pytest.approx(4 * 0.05, rel=0.2)


def test_repeated_answers_to_one_question_are_one_unit():
    from rhlab.evals.scoring import rate_se
    from rhlab.experiments.report.collect import eval_flags

    # 10 questions x 5 answers, each question answered the same way every time: 10 units of evidence, not 50,
    # so the naive SE over 50 samples is too small
    flags = [1] * 25 + [0] * 25
    ids = [f"q{i // 5}" for i in range(50)]
    p, se = rate_se(flags, ids)
    _, naive = rate_se(flags)
    assert p == 0.5 and se > naive * 1.5
    assert stats.cluster_means(flags, ids) == [1.0] * 5 + [0.0] * 5
    assert eval_flags({"flags": flags, "flag_ids": ids}) == [1.0] * 5 + [0.0] * 5
    assert eval_flags({"flags": flags, "flag_ids": [f"q{i}" for i in range(50)]}) == flags  # no repeats: as stored


def test_paired_items_cancel_shared_item_difficulty():
    # two arms scored on the same 200 items whose difficulty varies widely; arm a sits 0.01 above b on every item
    rng = np.random.default_rng(3)
    base = rng.uniform(0.1, 0.9, 200)
    a = [{f"i{k}": v + 0.01 for k, v in enumerate(base)}]
    b = [{f"i{k}": v for k, v in enumerate(base)}]
    paired = stats.paired_diff_ci(a, b)
    unpaired = stats.diff_ci([list(a[0].values())], [list(b[0].values())])
    assert paired["diff"] == pytest.approx(0.01) and paired["lo"] > 0  # the shift is seen
    assert unpaired["lo"] < 0 < unpaired["hi"]  # unpaired, the items' spread hides it
    assert paired["paired_items"] == 200
    # only shared items are compared; a side without items gives no paired answer
    assert stats.paired_diff_ci(a, [{"i0": 0.5}]) is None and stats.paired_diff_ci(a, [{}]) is None
