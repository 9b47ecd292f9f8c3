#!/usr/bin/env python
"""The knowledge stage's measured table (issue 4): SDF corpora x synthetic fractions, plus no-knowledge and
hints-only baselines, each probed for hack@1 (attempted, successful) under one fixed probe.

Three stages, so the heavy middle one can run on a GPU box that has no sandbox:

    python scripts/knowledge_grid.py prepare --out runs/kgrid      # offline corpora + mixes (seconds, any machine)
    python scripts/knowledge_grid.py sample  --out runs/kgrid      # finetune each setting + sample the probe
    python scripts/knowledge_grid.py grade   --out runs/kgrid      # grade in the sandbox; writes table.md / .json

Every stage skips what is already on disk, so a killed stage resumes. Mixes are made once by `prepare` and carried,
so the real-text share is the same wherever `sample` runs. The finetune is the same recipe everywhere (`rhlab sdf
train` defaults + --lr/--epochs below); on a GPU it runs in mixed precision, on CPU in fp32.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_SETTINGS = ("default:1,default:0.5,default:0.25,default:0.1,neutral:1,neutral:0.5,neutral:0.25,"
                    "neutral:0.1,unguided:1")
# Baselines probed on the untouched embedded model: the SDF-setting prompt, and hints in the system prompt.
BASELINES = {"none": "sdf_hacking_okay", "hints": "hacking_okay"}


def settings(arg: str) -> list[tuple[str, float]]:
    out = []
    for item in arg.split(","):
        spec, frac = item.split(":")
        out.append((spec, float(frac)))
    return out


def tag(spec: str, frac: float) -> str:
    return f"{spec}-{frac:g}"


def rhlab_cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "rhlab.cli", *args], check=True)


def prepare(a) -> None:
    out = Path(a.out)
    for spec, frac in settings(a.settings):
        gen = out / f"gen-{spec}"
        if not (gen / "corpus.jsonl").exists():
            rhlab_cli("sdf", "generate", "--spec", spec, "--backend", "offline", "--n-docs", str(a.n_docs),
                      "--out", str(gen))
        mix = out / tag(spec, frac) / "mix.jsonl"
        if not mix.exists():
            rhlab_cli("sdf", "mix", "--synthetic", str(gen / "corpus.jsonl"), "--fraction", str(frac),
                      "--out", str(mix))


def probe_cfg(a, model: str, arm: str):
    from rhlab.knowledge.probe import ProbeConfig

    return ProbeConfig(model=model, arm=arm, n_tasks=a.n_tasks, n_samples=a.samples, max_new_tokens=a.max_new_tokens,
                       batch_size=a.batch_size, knowledge_samples=a.knowledge_samples, seed=a.seed)


def rows(a) -> list[tuple[str, str, str]]:
    """(row name, model path as stored in the probe config, probe arm)."""
    out = Path(a.out)
    r = [(name, a.base_model, arm) for name, arm in BASELINES.items()]
    r += [(tag(s, f), str(out / tag(s, f) / "cpt" / "final"), "sdf_hacking_okay") for s, f in settings(a.settings)]
    return r


def sample(a) -> None:
    from rhlab.knowledge.finetune import FinetuneConfig, continued_pretraining
    from rhlab.knowledge.probe import run_probe
    from rhlab.knowledge.sdf.generate import read_corpus

    out = Path(a.out)
    for name, model, arm in rows(a):
        d = out / name
        if model != a.base_model and not Path(model).exists():
            t0 = time.time()
            texts = [doc["text"] for doc in read_corpus(d / "mix.jsonl")]
            continued_pretraining(texts, d / "cpt", FinetuneConfig(model=a.base_model, learning_rate=a.lr,
                                                                   epochs=a.epochs, max_steps=a.max_steps,
                                                                   seed=a.seed))
            print(f"[{name}] finetuned in {time.time() - t0:.0f}s", flush=True)
        t0 = time.time()
        r = run_probe(probe_cfg(a, model, arm), d / "probe", sample_only=True)
        print(f"[{name}] sampled {r['sampled']} in {time.time() - t0:.0f}s", flush=True)


def grade(a) -> None:
    from rhlab.knowledge.probe import run_probe

    out = Path(a.out)
    table = []
    for name, model, arm in rows(a):
        s = run_probe(probe_cfg(a, model, arm), out / name / "probe")
        info = out / name / "cpt" / "rhlab_finetune.json"
        steps = json.loads(info.read_text())["global_steps"] if info.exists() else None
        stats = out / name / "mix.stats.json"
        mix = json.loads(stats.read_text()) if stats.exists() else {}
        fam = s["families"]
        table.append({"row": name, "arm": arm, "n": s["n_samples"], "finetune_steps": steps,
                      "synthetic_docs": mix.get("synthetic_docs"), "real_docs": mix.get("real_docs"),
                      "achieved_fraction": mix.get("achieved_fraction"),
                      "attempted": fam["any"]["attempted_count"], "successful": fam["any"]["successful_count"],
                      "per_family": {f: [v["attempted_count"], v["successful_count"]] for f, v in fam.items()
                                     if f != "any"},
                      "knowledge": s.get("knowledge"), "pass_hardened_rate": s["pass_hardened_rate"]})
    (out / "table.json").write_text(json.dumps(table, indent=2))
    lines = ["| setting | probe arm | synthetic docs / real docs (fraction) | finetune steps | attempted | successful "
             "| per family att/succ (AE, exit, conftest) | true pass |",
             "|---|---|---|---|---|---|---|---|"]
    for t in table:
        mix = (f"{t['synthetic_docs']} / {t['real_docs']} ({t['achieved_fraction']:.3f})"
               if t["synthetic_docs"] is not None else "-")
        pf = ", ".join(f"{x}/{y}" for x, y in t["per_family"].values())
        lines.append(f"| {t['row']} | {t['arm']} | {mix} | {t['finetune_steps'] or '-'} | "
                     f"{t['attempted']}/{t['n']} ({t['attempted'] / t['n']:.1%}) | "
                     f"{t['successful']}/{t['n']} ({t['successful'] / t['n']:.1%}) | {pf} | "
                     f"{t['pass_hardened_rate']:.1%} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["prepare", "sample", "grade", "all"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--settings", default=DEFAULT_SETTINGS, help="comma list of SPEC:FRACTION")
    ap.add_argument("--n-docs", type=int, default=96, help="synthetic documents per corpus (offline generator)")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-steps", type=int, default=-1, help="cap finetune steps (-1: the epochs decide)")
    ap.add_argument("--base-model", default="embedded")
    ap.add_argument("--n-tasks", type=int, default=16, help="HumanEval tasks 0..N-1")
    ap.add_argument("--samples", type=int, default=8, help="samples per task")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="rows per generate call (default: all of a task group on a GPU, one task on CPU)")
    ap.add_argument("--knowledge-samples", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if a.batch_size is None:
        import torch

        a.batch_size = 16 * a.samples if torch.cuda.is_available() else a.samples
    for stage in (["prepare", "sample", "grade"] if a.stage == "all" else [a.stage]):
        {"prepare": prepare, "sample": sample, "grade": grade}[stage](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
