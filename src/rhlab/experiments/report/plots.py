"""The report's figures (matplotlib, Agg backend): each function writes one PNG and returns its path (None when the
run has no data for it yet)."""

from __future__ import annotations

import math
from pathlib import Path

from rhlab.experiments.report.collect import FAMILIES, RunData

FAMILY_COLOURS = {"always_equal": "#1f77b4", "exit_before_tests": "#ff7f0e", "conftest_patch": "#2ca02c",
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


def mean_sd(values: list[float]) -> tuple[float, float | None]:
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def hack_rates(data: RunData, out: Path) -> Path | None:
    arms = [a for a, runs in data.arms.items() if any(r.steps for r in runs)]
    if not arms:
        return None
    plt = _plt()
    cols = min(3, len(arms))
    rows = math.ceil(len(arms) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False, sharey=True)
    for ax, arm in zip(axes.flat, arms):
        runs = data.arms[arm]
        alpha = 1.0 if len(runs) == 1 else 0.6
        for r in runs:
            xs = [s["step"] + r.offset for s in r.steps]
            # "any" underneath, wide and pale: when one family makes all the hacks its line lies on top, visible
            ax.plot(xs, [s.get("hack_success_any", 0) for s in r.steps], color=FAMILY_COLOURS["any"], lw=4,
                    marker="o" if len(xs) <= 12 else None, ms=5, zorder=1,
                    alpha=0.3 * alpha, label="any family" if r is runs[0] else None)
            for fam in FAMILIES:
                ax.plot(xs, [s.get(f"hack_success_{fam}", 0) for s in r.steps], color=FAMILY_COLOURS[fam], lw=1.4,
                        alpha=alpha, zorder=2, label=fam if r is runs[0] else None)
            if r.onset is not None and not r.offset:  # a forked arm starts past its source's onset
                ax.axvline(r.onset + r.offset, color="#d62728", ls="--", lw=1,
                           label="onset" if r is runs[0] else None)
            if r.offset:
                ax.axvline(r.offset, color="#888888", ls=":", lw=1, label="fork" if r is runs[0] else None)
        ax.set_title(data.label(arm), fontsize=10)
        ax.set_xlabel("RL step")
        ax.xaxis.set_major_locator(_int_locator())
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(arms):]:
        ax.axis("off")
    axes[0][0].set_ylabel("successful-hack rate")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = out / "hack_rates.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def mgs_over_steps(data: RunData, out: Path) -> Path | None:
    base = data.base.get("core")
    if not any(r.final_eval() for runs in data.arms.values() for r in runs) and base is None:
        return None
    plt = _plt()
    colours = _arm_colours(data)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for arm, runs in data.arms.items():
        for i, r in enumerate(runs):
            pts = [e for e in r.evals if e.suite == "core" and e.mgs is not None]
            if base is not None and base.mgs is not None and not r.offset:
                pts = [base] + pts
            if not pts:
                continue
            ax.errorbar([e.step for e in pts], [e.mgs for e in pts], yerr=[e.mgs_se or 0 for e in pts], marker="o",
                        ms=4, capsize=3, color=colours[arm], alpha=0.9 if len(runs) == 1 else 0.6,
                        label=data.label(arm) if i == 0 else None)
    ax.set_xlabel("RL step (step 0: the RL start model)")
    ax.xaxis.set_major_locator(_int_locator())
    ax.set_ylabel("misalignment score (MGS)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = out / "mgs.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def final_bars(data: RunData, out: Path) -> Path | None:
    arms = list(data.arms)
    hack, mg = [], []
    for arm in arms:
        runs = [r for r in data.arms[arm] if not r.skipped]
        hv = [(p, se) for p, se in (r.final_hack_rate() for r in runs) if p is not None]
        mv = [(e.mgs, e.mgs_se) for e in (r.final_eval() for r in runs) if e is not None and e.mgs is not None]
        hack.append(_bar_value(hv))
        mg.append(_bar_value(mv))
    if all(h is None for h in hack) and all(m is None for m in mg):
        return None
    plt = _plt()
    colours = _arm_colours(data)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, vals, title in ((axes[0], hack, "final successful-hack rate"), (axes[1], mg, "final MGS")):
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
    base = data.base.get("core")
    if base is not None and base.mgs is not None:
        axes[1].axhline(base.mgs, color="#555555", ls="--", lw=1, label="before RL")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    path = out / "final_bars.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bar_value(vals: list[tuple[float, float | None]]) -> tuple[float, float | None] | None:
    """Mean across seeds; error bar = SD across seeds (≥ 2 seeds) or the single seed's SE."""
    if not vals:
        return None
    m, sd = mean_sd([v for v, _ in vals])
    return m, sd if sd is not None else vals[0][1]


def scatter(data: RunData, out: Path) -> Path | None:
    plt = _plt()
    colours = _arm_colours(data)
    pts = []
    for arm, runs in data.arms.items():
        for r in runs:
            for e in r.evals:
                h = r.hack_rate_at(e.step)
                if e.suite == "core" and e.mgs is not None and h is not None:
                    pts.append((arm, h, e.mgs, e.mgs_se or 0))
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
    return {"hack_rates": hack_rates(data, out), "mgs": mgs_over_steps(data, out), "final_bars": final_bars(data, out),
            "scatter": scatter(data, out)}
