"""`rhlab report RUN_DIR`: a static HTML page with PNG figures for an experiment run directory.

    from rhlab.experiments.report import build_report
    index = build_report("runs/demo")   # -> runs/demo/report/index.html (+ summary.md)

Modules: `collect` (run dir → data), `plots` (matplotlib, Agg), `html` (the page), `markdown` (summary.md: the
tables as Markdown, for notes and docs).
"""

from __future__ import annotations

from pathlib import Path


def build_report(run_dir: str | Path, out: str | Path | None = None, skipped: list | None = None) -> Path:
    """Write the page, its figures and summary.md; returns the page's path. A damaged run directory still gets a
    report: records that cannot be used are left out, listed on the page and in summary.md, and appended to
    `skipped` (a list of `rhlab.rundir.SkippedRecord`) when given. Raises ConfigError when RUN_DIR or its spec.yaml
    cannot be used (nothing is written then)."""
    from rhlab.experiments.report.collect import collect
    from rhlab.experiments.report.html import render_page
    from rhlab.experiments.report.markdown import render_summary
    from rhlab.experiments.report.plots import all_plots

    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "report"
    data = collect(run_dir)
    if skipped is not None:
        skipped.extend(data.skipped)
    figs = all_plots(data, out)
    index = out / "index.html"
    index.write_text(render_page(data, figs, out), encoding="utf-8")
    (out / "summary.md").write_text(render_summary(data), encoding="utf-8")
    return index
