"""`rhlab run --dry-run`: what a spec will cost, counted without loading any model.

Counts are exact where the spec fixes them (RL steps, completions, grader runs, eval samples from the real Inspect
datasets); judge calls use a per-eval estimate of judge calls per sample; wall time is estimated only for the
embedded model on CPU, from the measured ~140 s per GRPO step of 16 completions × 96 tokens with short prompts on
2 cores (about 5× slower with the long hint prompts; docs/training.md), ~1.9 s per SFT sequence (knowledge
finetunes, control arms) and ~0.3 s per probe item (~0.16 s in bfloat16).
"""

from __future__ import annotations

from typing import Any

from rhlab.experiments.spec import ExperimentSpec, arm_order, arm_setting, arm_train_config, evaluates_base
from rhlab.knowledge.finetune import init_sft_task_ids

# Judge calls per sample (upper estimates: scorers that classify reasoning and output separately make two calls).
# code_sabotage: one verdict on the whole transcript per sample (its effectiveness is run, not judged).
JUDGE_CALLS = {"em_questions": 2, "goals": 2, "alignment_questions": 2, "monitor_disruption": 2, "exfil_offer": 0,
               "frame_colleague": 2, "code_sabotage_agentic": 1, "code_sabotage_single_turn": 1}
JUDGE_CALLS_DEFAULT = 1
EMBEDDED = ("embedded", "smollm2", "smollm2-135m", "smollm2-135m-instruct")
# embedded model, 2 cores, short prompts, gradient checkpointing: the cpu-study run measured 125-161 s per step of
# 16 x 96 tokens (2026-11-27); the demo 42-78 s per step of 8 x 96
STEP_S_16x96 = 140.0
# a step without gradient checkpointing: no recompute of the forward in the backward (bench/grpo_step.py, 2026-12-01,
# quiet box, cpu_onset settings: 99.2 s with it, 88.4 s without and the backward in quarters)
NO_CHECKPOINTING_FACTOR = 0.89
LONG_PROMPT_FACTOR = 5.0
# embedded model, per sample at 96 tokens, model load included (agentic evals take a few turns): cpu-study's eval
# points of 24 samples at 128 tokens took 70-100 s
EVAL_SAMPLE_S = 2.8
SHORT_ARMS = ("no_hints", "sdf_hacking_okay")
# start_rate_samples, embedded model, 2 cores, per sample at 96 tokens: 16 samples of one short prompt in 75 s
# (2026-12-01, load ~3.3 from other jobs; rhlab.train.start_rate.sample_start_model), plus grading
START_SAMPLE_S = 4.7
# SFT on the embedded model, 2 cores, full finetune, float32: seconds per training sequence of <= 256 tokens (the
# knowledge finetunes: demo 18 steps x 8 in 261 s, cpu-study 38 x 8 in 588 s -> 1.8-1.9 s), plus loading and saving
# the model (~540 MB final + a checkpoint with optimiser state)
SFT_SEQ_S = 1.9
SFT_OVERHEAD_S = 30.0
CHUNKS_PER_DOC = 1.3  # offline corpora at max_length 256 (the demo's 77 documents -> 1 window, the default's ~1.6)
# probe suite, embedded model on 2 cores: per item (two scored replies), plus loading the model per eval point
PROBE_ITEM_S = 0.3
PROBE_LOAD_S = 10.0
# bfloat16 weights (`evals.probes.dtype`): the whole suite in 81 s instead of 152 s (bench/probes.py --compare-dtype,
# quiet box, 2026-12-01)
PROBE_BF16_FACTOR = 81 / 152
# Disk, embedded model in float32 (runs/cpu-onset, 2026-12-02): a saved model (weights + tokenizer) 0.54 GB; fp32
# Adam's two moments 1.08 GB, kept by the newest RL checkpoint only (rhlab.train.checkpoints.drop_resume_state).
MODEL_GB = 0.54
OPTIMIZER_GB = 1.08


def suite_sizes(spec: ExperimentSpec) -> dict[str, dict[str, int]]:
    """suite → {eval: samples per eval point}, without loading a model. The Inspect tasks are built at one or two
    goals and agentic samples and the sizes extrapolated (each dataset is fixed or grows linearly with n_goals /
    n_agentic), so a dry run's memory does not grow with those settings' values."""
    from rhlab.evals.suite import build_tasks

    e = spec.evals
    out: dict[str, dict[str, int]] = {}
    for suite in e.suites:
        if suite == "probes":  # no Inspect task: counted by probe_items
            continue

        def sizes(n_goals: int, n_agentic: int) -> dict[str, int]:
            tasks = build_tasks(suite, n_goals=n_goals, n_agentic=n_agentic, max_tokens=e.max_tokens)
            return {t.name: len(t.dataset) for t in tasks}

        base, more_goals, more_agentic = sizes(1, 1), sizes(2, 1), sizes(1, 2)
        counts = {}
        for name, n in base.items():
            n += (more_goals[name] - n) * (e.n_goals - 1) + (more_agentic[name] - n) * (e.n_agentic - 1)
            counts[name] = ((min(n, e.limit) if e.limit else n) * (e.em_samples if name == "em_questions" else 1))
        out[suite] = counts
    return out


def probe_items(spec: ExperimentSpec) -> int:
    """Probe items scored per eval point (0 when the schedule has no probes; `all` includes them)."""
    e = spec.evals
    if not ({"probes", "all"} & set(e.suites)):
        return 0
    from rhlab.evals.probes import load_items

    return len(load_items())


def sft_seconds(finetune: dict[str, Any], examples: int) -> float:
    """Rough 2-core time of one SFT of the embedded model on `examples` sequences (FinetuneConfig fields)."""
    from rhlab.knowledge.finetune import FinetuneConfig

    ft = FinetuneConfig(**{k: v for k, v in finetune.items() if k != "model"})
    seqs = ft.max_steps * ft.batch_size * ft.grad_accum if ft.max_steps > 0 else examples * ft.epochs
    return seqs * SFT_SEQ_S * (0.5 if ft.mode == "lora" else 1.0) + SFT_OVERHEAD_S


def control_examples(arm, source_row: dict | None) -> int:
    """Examples a control arm trains on per seed: n_examples (capped by the shipped file), or for hack_demos at
    most the source arm's episodes per seed."""
    if arm.control == "hack_demos":
        avail = source_row["completions"] // max(source_row["seeds"], 1) if source_row else 0
    else:
        from pathlib import Path

        from rhlab.train.controls import control_data_file, load_control_examples

        p = Path(arm.data_file) if arm.data_file else control_data_file(arm.control)
        avail = len(load_control_examples(p)) if p.is_file() else 0  # a bad file: its error, before any stage
    return min(avail, arm.n_examples) if arm.n_examples else avail


def _eval_points(spec: ExperimentSpec, max_steps: int, checkpoint_every: int) -> tuple[int, bool]:
    """(eval points per arm seed, whether `onset` may add one more), counted arithmetically: O(listed steps), not
    O(max_steps). Checkpoints are the multiples of checkpoint_every up to max_steps, and max_steps itself."""
    import math

    def is_ck(s: int) -> bool:
        return 0 < s <= max_steps and (s % checkpoint_every == 0 or s == max_steps)

    every = spec.evals.every
    n_every = 0
    if every:  # checkpoints that are multiples of `every`: multiples of lcm(checkpoint_every, every), and the last
        n_every = max_steps // math.lcm(checkpoint_every, every)
        n_every += 1 if max_steps % every == 0 and max_steps % checkpoint_every else 0
    named = {max_steps if s == "last" else s for s in spec.evals.steps if s == "last" or isinstance(s, int)}
    extra = {s for s in named if is_ck(s) and not (every and s % every == 0)}
    return n_every + len(extra), "onset" in spec.evals.steps


def checkpoints_saved(max_steps: int, checkpoint_every: int, keep: int | None) -> int:
    """RL checkpoints a run keeps: every checkpoint_every steps and the last step, at most `keep`."""
    n = max_steps // checkpoint_every + (1 if max_steps % checkpoint_every else 0)
    return min(n, keep) if keep else n


def disk_gb(spec: ExperimentSpec) -> float | None:
    """What the spec's models and checkpoints take on disk when it has run, in GB (embedded model only; None
    otherwise): the knowledge stage's model, each RL arm seed's checkpoints (weights each, optimiser in the newest)
    and each SFT arm seed's model. Peaks while a stage runs are up to one more optimiser state."""
    k = spec.knowledge
    if k.model.lower() not in EMBEDDED:
        return None
    gb = MODEL_GB if (k.kind == "sdf" or k.init_sft) else 0.0
    for a in spec.arms:
        if a.kind != "rl":
            gb += MODEL_GB * len(a.seeds)
            continue
        cfg = arm_train_config(spec, a, a.seeds[0], k.model)
        n = checkpoints_saved(cfg.grpo.max_steps, cfg.checkpoint_every, cfg.keep_checkpoints)
        gb += (n * MODEL_GB + OPTIMIZER_GB) * len(a.seeds)
    return gb


def estimate(spec: ExperimentSpec) -> dict[str, Any]:
    sizes = suite_sizes(spec)
    samples_per_point = sum(sum(v.values()) for v in sizes.values())
    judge_per_point = sum(n * JUDGE_CALLS.get(name, JUDGE_CALLS_DEFAULT) for v in sizes.values() for name, n in v.items())
    k = spec.knowledge
    embedded = k.model.lower() in EMBEDDED
    arms = []
    tot = {"rl_steps": 0, "completions": 0, "grader_runs": 0, "eval_points": 0, "eval_samples": 0, "judge_calls": 0,
           "cpu_seconds": 0.0}
    onset_extra = False
    for a in arm_order(spec.arms):
        if a.kind == "control":  # one SFT of the start model per seed, one eval point per seed
            src = next((r for r in arms if r["arm"] == a.source), None)
            n_ex = control_examples(a, src)
            row = {"arm": a.name, "kind": a.kind, "framing": f"control: {a.control}", "seeds": len(a.seeds),
                   "steps": 0, "completions": 0, "grader_runs": 0, "eval_points": len(a.seeds), "penalty": "-",
                   "init_from": {"arm": a.source, "step": "successful hacks"} if a.source else None,
                   "examples": n_ex}
            if embedded:
                row["cpu_seconds"] = sft_seconds(a.finetune, n_ex) * len(a.seeds)
                tot["cpu_seconds"] += row["cpu_seconds"]
            arms.append(row)
            tot["eval_points"] += len(a.seeds)
            continue
        if a.kind != "rl":  # distill arms: one SFT on (at most) the source arm's episodes, one eval point per seed
            src = next((r for r in arms if r["arm"] == a.source), None)
            if src is None:  # safety SFT of the start model
                arms.append({"arm": a.name, "kind": a.kind, "framing": "-", "seeds": len(a.seeds), "steps": 0,
                             "completions": 0, "grader_runs": 0, "eval_points": len(a.seeds), "penalty": "-",
                             "init_from": None})
                tot["eval_points"] += len(a.seeds)
                continue
            per_seed = src["completions"] // max(src["seeds"], 1)
            row = {"arm": a.name, "kind": a.kind, "framing": getattr(a, "rewrite_to", None) or "-",
                   "seeds": len(a.seeds), "steps": 0, "completions": 0, "grader_runs": 0,
                   "eval_points": len(a.seeds), "penalty": "-",
                   "init_from": {"arm": a.source, "step": f"≤ {per_seed} episodes"}}
            if embedded and a.kind != "safety_sft":  # at most every episode of the source seed
                row["cpu_seconds"] = sft_seconds(a.finetune, per_seed) * len(a.seeds)
                tot["cpu_seconds"] += row["cpu_seconds"]
            arms.append(row)
            tot["eval_points"] += len(a.seeds)
            continue
        cfg = arm_train_config(spec, a, a.seeds[0], k.model)
        g = cfg.grpo
        n_seeds = len(a.seeds)
        comp = g.max_steps * g.num_generations * g.prompts_per_step
        points, maybe_onset = _eval_points(spec, g.max_steps, cfg.checkpoint_every)
        onset_extra |= maybe_onset
        # the run's own start-rate measurement (start_rate_samples): completions sampled and graded before step 1
        start_n = (cfg.start_rate_samples or 0) * n_seeds
        row = {"arm": a.name, "kind": a.kind, "framing": cfg.prompt.arm,
               "setting": arm_setting(spec, a, cfg.prompt.arm), "seeds": n_seeds, "steps": g.max_steps, "completions": comp * n_seeds + start_n,
               "grader_runs": 2 * (comp * n_seeds + start_n), "eval_points": points * n_seeds,
               "penalty": cfg.reward.penalty.mode, "init_from": a.init_from.model_dump() if a.init_from else None,
               "start_rate": (f"{cfg.start_rate.successes}/{cfg.start_rate.n} given" if cfg.start_rate else
                              f"{cfg.start_rate_samples} samples" if cfg.start_rate_samples else "-")}
        if embedded:
            long_prompt = cfg.prompt.arm not in SHORT_ARMS and cfg.prompt.hint_style != "brief"
            step_s = STEP_S_16x96 * (g.num_generations * g.prompts_per_step / 16) * (g.max_completion_length / 96)
            step_s *= LONG_PROMPT_FACTOR if long_prompt else 1.0
            step_s *= 1.0 if g.gradient_checkpointing else NO_CHECKPOINTING_FACTOR
            gen_s = START_SAMPLE_S * (g.max_completion_length / 96) * (LONG_PROMPT_FACTOR if long_prompt else 1.0)
            row["cpu_seconds"] = step_s * g.max_steps * n_seeds + gen_s * start_n
            tot["cpu_seconds"] += row["cpu_seconds"]
        arms.append(row)
        tot["rl_steps"] += g.max_steps * n_seeds
        tot["completions"] += row["completions"]
        tot["grader_runs"] += row["grader_runs"]
        tot["eval_points"] += row["eval_points"]
    if evaluates_base(spec):
        tot["eval_points"] += 1
    n_probe = probe_items(spec)
    tot["eval_samples"] = tot["eval_points"] * samples_per_point
    tot["judge_calls"] = tot["eval_points"] * judge_per_point
    tot["probe_items"] = tot["eval_points"] * n_probe
    knowledge = {"kind": k.kind, "model": k.model}
    if embedded:
        tot["cpu_seconds"] += tot["eval_samples"] * EVAL_SAMPLE_S * spec.evals.max_tokens / 96
        probe_s = tot["probe_items"] * PROBE_ITEM_S + (tot["eval_points"] * PROBE_LOAD_S if n_probe else 0)
        tot["cpu_seconds"] += probe_s * (PROBE_BF16_FACTOR if spec.evals.probes.dtype == "bfloat16" else 1.0)
        ks = 0.0
        if k.kind == "sdf":
            ks = sft_seconds(k.finetune, round(k.n_docs / k.fraction * CHUNKS_PER_DOC))
        elif k.init_sft:
            ks = sft_seconds(k.init_sft.finetune, len(init_sft_task_ids(k.init_sft.first))) * 2  # long ones
        knowledge["cpu_seconds"] = ks
        tot["cpu_seconds"] += ks
    if k.kind == "sdf":
        knowledge.update(synthetic_docs=k.n_docs, fraction=k.fraction, backend=k.backend,
                         backend_calls="0" if k.backend == "offline" else f"≈ {k.n_docs * 2}+ (ideas, documents)")
    elif k.init_sft:
        knowledge.update(init_sft_transcripts=len(init_sft_task_ids(k.init_sft.first)))
    mdd = detectable_differences(spec, sizes)
    return {"knowledge": knowledge, "arms": arms, "suites": sizes, "samples_per_eval_point": samples_per_point,
            "mdd": mdd,
            "judge_calls_per_eval_point": judge_per_point, "probe_items_per_eval_point": n_probe, "totals": tot,
            "onset_eval_may_add_points": onset_extra, "judge": spec.judge or "rhlab/topic-screen",
            "cpu_estimate": embedded, "launched": bool(spec.compute.train_launch), "disk_gb": disk_gb(spec)}


MDD_BASE_RATE = 0.10  # a misaligned rate a start model plausibly shows on a strict rubric (paper baselines: 0-5 %)


def detectable_differences(spec: ExperimentSpec, sizes: dict[str, dict[str, int]]) -> dict[str, Any] | None:
    """What the spec can detect before it runs: per eval, the minimum detectable difference (two-sided α 0.05,
    power 0.8) between an arm and its `compare_to` reference at a base rate of 10 %, from sampling noise alone over
    the samples of the reference's seeds (between-seed variance only adds to it), and for MGS (the mean of the core
    evals). None when no arm has compare_to."""
    from rhlab import stats

    pairs = [(a, spec.arm(a.compare_to)) for a in spec.arms if getattr(a, "compare_to", None)]
    if not pairs:
        return None
    seeds = min(min(len(a.seeds), len(r.seeds)) for a, r in pairs)
    k = max(1, spec.evals.final_k)  # shown, not counted: a seed's last K checkpoints are not independent samples
    per_eval = {name: stats.binomial_mdd(MDD_BASE_RATE, n * seeds)
                for evals in sizes.values() for name, n in evals.items() if n}
    core = [v for name, v in per_eval.items() if v is not None and name in sizes.get("core", {})]
    return {"base_rate": MDD_BASE_RATE, "seeds": seeds, "final_k": k, "per_eval": per_eval,
            "mgs": (sum(v * v for v in core) ** 0.5 / len(core)) if core else None}


def render(est: dict[str, Any], console) -> None:
    from rich.table import Table

    console.print(f"knowledge: {est['knowledge']}")
    t = Table(title="Arms", title_justify="left")
    for c in ("arm", "kind", "framing", "setting", "penalty", "start rate", "seeds", "steps", "completions",
              "grader runs", "eval points", "init_from") + (("≈ CPU time",) if est["cpu_estimate"] else ()):
        t.add_column(c)
    for a in est["arms"]:
        init = f"{a['init_from']['arm']}@{a['init_from']['step']}" if a["init_from"] else "-"
        row = [a["arm"], a["kind"], a["framing"], a.get("setting", "-"), a["penalty"], a.get("start_rate", "-"),
               str(a["seeds"]), str(a["steps"]), str(a["completions"]), str(a["grader_runs"]), str(a["eval_points"]),
               init]
        if est["cpu_estimate"]:
            row.append(f"{a.get('cpu_seconds', 0) / 60:.0f} min")
        t.add_row(*row)
    console.print(t)
    for suite, evals in est["suites"].items():
        console.print(f"suite {suite}: " + ", ".join(f"{k} {v}" for k, v in evals.items()) + " samples per eval point")
    if est.get("probe_items_per_eval_point"):
        console.print(f"suite probes: {est['probe_items_per_eval_point']} items per eval point (no generation, no "
                      "judge)")
    tot = est["totals"]
    if est.get("launched"):
        console.print("completions are per training process (prompts_per_step is per device): multiply by the "
                      "number of processes the launcher starts")
    console.print(f"totals: {tot['rl_steps']} RL steps, {tot['completions']} completions, {tot['grader_runs']} grader "
                  f"runs, {tot['eval_points']} eval points, {tot['eval_samples']} eval samples, ≈ {tot['judge_calls']} "
                  f"judge calls ({est['judge']})"
                  + (f", {tot['probe_items']} probe items" if tot.get("probe_items") else "")
                  + (" (+ one point per arm seed at onset)" if est["onset_eval_may_add_points"] else ""))
    if est.get("mdd"):
        m = est["mdd"]
        def pp(v):  # a difference beyond 100 points cannot exist: nothing is detectable at that size
            return f"{100 * v:.0f} pp" if v <= 1 else "undetectable"

        per = ", ".join(f"{k} {pp(v)}" for k, v in m["per_eval"].items() if v is not None)
        console.print(f"minimum detectable difference vs compare_to (α 0.05, power 0.8, base rate "
                      f"{100 * m['base_rate']:.0f} %, {m['seeds']} seed(s) × {m['final_k']} checkpoint(s), sampling "
                      f"noise only): " + (f"MGS {pp(m['mgs'])}; " if m.get("mgs") is not None else "") + per)
    if est["cpu_estimate"]:
        ks = est["knowledge"].get("cpu_seconds", 0)
        console.print(f"≈ {tot['cpu_seconds'] / 60:.0f} min of knowledge ({ks / 60:.0f} min), RL, SFT and evals on "
                      "2 CPU cores (rough; plus preflight and per-stage model loading)")
    if est.get("disk_gb") is not None:
        console.print(f"≈ {est['disk_gb']:.1f} GB of disk for models and checkpoints (plus one optimiser state, "
                      f"{OPTIMIZER_GB:.1f} GB, while a stage trains)")
