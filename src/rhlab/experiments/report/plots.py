"""The report's figures (matplotlib, Agg backend): each function writes one PNG and returns its path (None when the
run has no data for it yet)."""

from __future__ import annotations

import math
from pathlib import Path

from rhlab.envs.families import HACK_FAMILIES
from rhlab.experiments.report.collect import RunData, probe_score
from rhlab.experiments.report.tables import (agg, arm_mgs, mgs_evals, point_mgs, probe_groups, seeds, step_series,
                                             step_values)

# one colour per family, in HACK_FAMILIES order (matplotlib's default cycle), and dark grey for "any family"
FAMILY_COLOURS = {**dict(zip(HACK_FAMILIES, ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"))),
                  "any": "#222222"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _arm_colours(data: RunData) -> dict[str, str]:
    cmap = _plt().get_cmap("tab10")
    return {a: cmap(i % 10) for i, a in enumerate(data.arms)}


def _int_locator():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)



def _arm_grid(plt, n: int):
    """One panel per arm, three to a row, sharing the y axis."""
    cols = min(3, n)
    rows = math.ceil(n / cols)
    return plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False, sharey=True)


def _figure_legend(fig, axes, ncol: int) -> None:
    """One legend below the panels holding every label of any panel once (panels may lack some lines)."""
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)


def _rate_panel(ax, title: str) -> None:
    """A per-arm panel of shares over RL steps: integer steps, a 0-1 axis, a light grid."""
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("RL step")
    ax.xaxis.set_major_locator(_int_locator())
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)


def hack_rates(data: RunData, out: Path) -> Path | None:
    arms = [a for a, runs in data.arms.items() if any(r.steps for r in runs)]
    if not arms:
        return None
    plt = _plt()
    fig, axes = _arm_grid(plt, len(arms))
    for ax, arm in zip(axes.flat, arms):
        runs = data.arms[arm]
        alpha = 1.0 if len(runs) == 1 else 0.6
        for r in runs:
            xs = [s["step"] + r.offset for s in r.steps]
            # "any" underneath, wide and pale: when one family makes all the hacks its line lies on top, visible
            ax.plot(xs, [s.get("hack_success_any", 0) for s in r.steps], color=FAMILY_COLOURS["any"], lw=4,
                    marker="o" if len(xs) <= 12 else None, ms=5, zorder=1,
                    alpha=0.3 * alpha, label="any family" if r is runs[0] else None)
            for fam in HACK_FAMILIES:
                ax.plot(xs, [s.get(f"hack_success_{fam}", 0) for s in r.steps], color=FAMILY_COLOURS[fam], lw=1.4,
                        alpha=alpha, zorder=2, label=fam if r is runs[0] else None)
            rule = r.onset_rule
            if r is runs[0] and not r.offset and rule is not None and rule.rule == "count":
                # the measured start rate with its 95 % CI, and the count the onset rule asks of a step
                lo, hi = rule.start_ci
                ax.axhspan(lo, hi, color="#d62728", alpha=0.08, lw=0, zorder=0, label="start rate, 95 % CI")
                ax.axhline(rule.start_rate, color="#d62728", lw=0.8, alpha=0.6, zorder=0)
                ax.axhline(rule.threshold, color="#d62728", ls=":", lw=1, zorder=0,
                           label=f"onset: ≥ {rule.min_hacks}/{rule.per_step} per step")
            elif r is runs[0] and not r.offset and rule is not None:
                ax.axhline(rule.threshold, color="#d62728", ls=":", lw=1, zorder=0,
                           label=f"onset: > {100 * rule.threshold:g} % (no start rate)")
            if r.onset is not None and not r.offset:  # a forked arm starts past its source's onset
                ax.axvline(r.onset + r.offset, color="#d62728", ls="--", lw=1,
                           label="onset" if r is runs[0] else None)
            if r.offset:
                ax.axvline(r.offset, color="#888888", ls=":", lw=1, label="fork" if r is runs[0] else None)
        _rate_panel(ax, data.label(arm))
    for ax in axes.flat[len(arms):]:
        ax.axis("off")
    axes[0][0].set_ylabel("successful-hack rate")
    _figure_legend(fig, axes, ncol=5)  # arms differ in their onset rule
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    path = out / "hack_rates.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


SIGNALS = (("zero_variance_share", "zero-variance prompt groups", "#9467bd"),
           ("hack_reasoning_mentions", "successful hacks mentioning the hack in reasoning", "#d62728"))


def training_signals(data: RunData, out: Path) -> Path | None:
    """Per arm over RL steps, one line per seed: the zero-variance share of prompt groups and the share of the
    step's successful hacks whose reasoning mentions the hack (steps without a successful hack have no point).
    None when no record carries these fields (runs from before them)."""
    arms = [a for a in data.arms if any(step_values(r, k) for r in seeds(data, a) for k, _, _ in SIGNALS)]
    if not arms:
        return None
    plt = _plt()
    fig, axes = _arm_grid(plt, len(arms))
    for ax, arm in zip(axes.flat, arms):
        runs = seeds(data, arm)
        alpha = 1.0 if len(runs) == 1 else 0.6
        for r in runs:
            for key, label, colour in SIGNALS:
                pts = step_values(r, key)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, lw=1.4, alpha=alpha,
                            marker="o" if key != "zero_variance_share" or len(pts) <= 12 else None, ms=3,
                            label=label if r is runs[0] else None)
        _rate_panel(ax, data.label(arm))
    for ax in axes.flat[len(arms):]:
        ax.axis("off")
    axes[0][0].set_ylabel("share")
    _figure_legend(fig, axes, ncol=2)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path = out / "training_signals.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _over_steps(data: RunData, out: Path, what: str, base: tuple[float | None, float | None], ylabel: str,
                name: str) -> Path | None:
    """Per arm: the mean across seeds ± SE at each evaluated step, with the start model at step 0."""
    series = {arm: [(s, m, se) for s, m, se, _ in step_series(data, arm, what) if m is not None] for arm in data.arms}
    if not any(series.values()) and base[0] is None:
        return None
    plt = _plt()
    colours = _arm_colours(data)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for arm, pts in series.items():
        # RL arms start from the start model (its step 0 lives in evals/base); a control's or a forked arm's own
        # points are its model, not the start model's
        own_start = any(r.offset for r in data.arms[arm]) or data.arm_spec(arm).get("kind") == "control"
        if base[0] is not None and not own_start and not any(p[0] == 0 for p in pts):
            pts = [(0, base[0], base[1])] + pts
        if not pts:
            continue
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] or 0 for p in pts], marker="o", ms=4,
                    capsize=3, color=colours[arm], alpha=0.9, label=data.label(arm))
    if base[0] is not None:
        ax.plot([0], [base[0]], marker="s", ms=7, color="#555555", ls="none", label="RL start model", zorder=5)
    if what == "probes":
        ax.axhline(0.5, color="#999999", ls=":", lw=1)
    ax.set_xlabel("RL step (step 0: the RL start model)")
    ax.xaxis.set_major_locator(_int_locator())
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = out / name
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def mgs_over_steps(data: RunData, out: Path) -> Path | None:
    return _over_steps(data, out, "mgs", point_mgs(data, data.base_point("core")), "misalignment score (MGS)",
                       "mgs.png")


def probes_over_steps(data: RunData, out: Path) -> Path | None:
    b = data.base_point("probes")
    if b is None and not any(probe_groups(data, a) for a in data.arms):
        return None
    return _over_steps(data, out, "probes", probe_score(b.probes) if b else (None, None),
                       "probe score (p(misaligned))", "probes.png")


def final_bars(data: RunData, out: Path) -> Path | None:
    from rhlab.experiments.report.tables import _mean_k

    arms = list(data.arms)
    hack, mg, pr = [], [], []
    for arm in arms:
        hack.append(_bar_value([r.final_hack_rate() for r in seeds(data, arm)]))
        mg.append(_bar_value(arm_mgs(data, arm)))
        pr.append(_bar_value([_mean_k([probe_score(e.probes) for e in r.final_points("probes", data.final_k)])
                              for r in seeds(data, arm)]))
    if all(h is None for h in hack) and all(m is None for m in mg):
        return None
    panels = [(hack, "final successful-hack rate"), (mg, "final MGS")]
    if any(p is not None for p in pr):
        panels.append((pr, "final probe score"))
    plt = _plt()
    colours = _arm_colours(data)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    axes = axes[0]
    for ax, (vals, title) in zip(axes, panels):
        xs = list(range(len(arms)))
        ax.bar(xs, [v[0] if v else 0 for v in vals], yerr=[v[1] or 0 if v else 0 for v in vals], capsize=4,
               color=[colours[a] for a in arms])
        for x, v in zip(xs, vals):
            if v is None:
                ax.text(x, 0.0, "n/a", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(xs, [data.label(a) for a in arms], rotation=20, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        top = max([v[0] + (v[1] or 0) for v in vals if v] + [0.0])
        ax.set_ylim(0, max(0.05, top * 1.15))
    bp = data.base_point("probes")
    for i, b in ((1, point_mgs(data, data.base_point("core"))[0]), (2, probe_score(bp.probes)[0] if bp else None)):
        if b is not None and i < len(axes):
            axes[i].axhline(b, color="#555555", ls="--", lw=1, label="before RL")
            axes[i].legend(fontsize=8)
    fig.tight_layout()
    path = out / "final_bars.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bar_value(vals: list[tuple[float | None, float | None]]) -> tuple[float, float | None] | None:
    """Mean across seeds; error bar = SE across seeds (≥ 2 seeds) or the single seed's sampling SE."""
    m, se, _ = agg(vals)
    return None if m is None else (m, se)


def scatter(data: RunData, out: Path) -> Path | None:
    plt = _plt()
    colours = _arm_colours(data)
    pts = []
    names = mgs_evals(data)[0]
    for arm, runs in data.arms.items():
        for r in runs:
            for e in r.points("core"):
                h = r.hack_rate_at(e.step)
                m, se = point_mgs(data, e, names)
                if m is not None and h is not None:
                    pts.append((arm, h, m, se or 0))
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6, 4.2))
    seen = set()
    for arm, h, m, se in pts:
        ax.errorbar([h], [m], yerr=[se], fmt="o", capsize=3, color=colours[arm],
                    label=data.label(arm) if arm not in seen else None)
        seen.add(arm)
    ax.set_xlabel("successful-hack rate at the checkpoint's training step")
    ax.set_ylabel("MGS at the checkpoint")
    ax.set_xlim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "scatter.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def all_plots(data: RunData, out: Path) -> dict[str, Path | None]:
    out.mkdir(parents=True, exist_ok=True)
    return {"hack_rates": hack_rates(data, out), "mgs": mgs_over_steps(data, out),
            "probes": probes_over_steps(data, out), "final_bars": final_bars(data, out), "scatter": scatter(data, out),
            "training_signals": training_signals(data, out)}
