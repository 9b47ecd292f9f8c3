"""GRPO step cost: rhlab's trainer against a bare `trl.GRPOTrainer`, in the same run.

    HF_HUB_OFFLINE=1 python bench/grpo_step.py [--config configs/train/cpu_onset.yaml] [--model embedded]
        [--steps 4] [--set KEY=VALUE ...] [--only rhlab|bare]

Both sides train the same model on the same dataset rows (rhlab's `build_dataset`: the same chat-templated prompts,
so the same token lengths) with the same `GRPOConfig` (`rhlab.train.grpo.grpo_args`: generation settings, batch
shape, gradient checkpointing) and LoRA config (`peft_config`, for `grpo.lora`). rhlab's side is `rhlab.train.train` itself — rewards from both graders in the
sandbox pool, step and episode records, the records callback, TensorBoard; the bare side gets a trivial reward (the
completion's length mod 3, so the advantages are not all zero and the loss has a gradient). Each side runs in a
child process of its own, so each one's peak RSS (VmHWM of the trainer process; the sandbox workers are other
processes and are reported apart) is its own.

Seconds per step are taken between successive `on_step_begin` callbacks (the last step ends at `on_train_end`),
so they hold everything a step does; the first step is reported apart (warm-up) and the rest averaged. Where the
time goes comes from TRL's own profiling contexts (generate, per-token log-probs, rewards, loss), collected here
rather than sent to a logger; "rest" is the step minus those (backward, optimiser, callbacks, records).
The load average is printed before and after: only the same-run ratios mean anything on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _cpu import load_average as _load  # bench/ is the script directory, so on the path

ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _config(args):
    from rhlab.config import apply_overrides, load_config
    from rhlab.train.config import TrainConfig

    cfg = load_config(TrainConfig, args.config)
    sets = {"model": args.model, "grpo.max_steps": args.steps, "start_rate_samples": None,
            "checkpoint_every": max(args.steps + 1, cfg.checkpoint_every)}
    cfg = apply_overrides(cfg, sets, source="bench")
    return apply_overrides(cfg, list(args.set), source="--set")


class _Timing:
    """Step boundaries (`on_step_begin`, `on_train_end`) and TRL's profiling durations, per step."""

    def __init__(self):
        self.marks: list[float] = []
        self.profile: list[dict[str, float]] = [defaultdict(float)]
        self.active: list[str] = []  # the profiling contexts open now, innermost last
        self.rss_peak: dict[str, float] = defaultdict(float)  # MB, by innermost open context ("other": none)

    def _sample_rss(self) -> None:
        import threading

        def loop():
            while True:
                for line in Path("/proc/self/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        mb = int(line.split()[1]) / 1024
                        where = self.active[-1] if self.active else "other"
                        self.rss_peak[where] = max(self.rss_peak[where], mb)
                time.sleep(0.05)

        threading.Thread(target=loop, daemon=True).start()

    def install(self):
        from transformers.trainer_callback import CallbackHandler
        from trl.extras import profiling

        timing = self
        begin, end = CallbackHandler.on_step_begin, CallbackHandler.on_train_end

        def on_step_begin(handler, *a, **k):
            timing.marks.append(time.perf_counter())
            if len(timing.marks) > 1:
                timing.profile.append(defaultdict(float))
            return begin(handler, *a, **k)

        def on_train_end(handler, *a, **k):
            timing.marks.append(time.perf_counter())
            return end(handler, *a, **k)

        enter, exit_ = profiling.ProfilingContext.__enter__, profiling.ProfilingContext.__exit__

        def enter_ctx(ctx):
            timing.active.append(ctx.name.split(".", 1)[-1])
            return enter(ctx)

        def exit_ctx(ctx, *exc):
            if timing.active:
                timing.active.pop()
            return exit_(ctx, *exc)

        def log_metrics(ctx, duration):
            timing.profile[-1][ctx.name.split(".", 1)[-1]] += duration

        CallbackHandler.on_step_begin, CallbackHandler.on_train_end = on_step_begin, on_train_end
        profiling.ProfilingContext._log_metrics = log_metrics
        profiling.ProfilingContext.__enter__, profiling.ProfilingContext.__exit__ = enter_ctx, exit_ctx
        self._sample_rss()

    def steps(self) -> list[dict]:
        out = []
        for i in range(len(self.marks) - 1):
            wall = self.marks[i + 1] - self.marks[i]
            prof = {k: round(v, 3) for k, v in sorted(self.profile[i].items())}
            # nested contexts: _prepare_inputs holds generate, the log-probs of generation and the rewards
            top = prof.get("_prepare_inputs", 0.0) + prof.get("compute_loss", 0.0)
            out.append({"step_s": round(wall, 3), "profile": prof, "rest_s": round(wall - top, 3)})
        return out


def child(args) -> dict:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    timing = _Timing()
    timing.install()
    cfg = _config(args)
    out: dict = {"side": args.child, "load_before": _load()}
    with tempfile.TemporaryDirectory(prefix="rhlab-bench-grpo-") as tmp:
        t0 = time.perf_counter()
        if args.child == "rhlab":
            from rhlab.train import train

            res = train(cfg, Path(tmp) / "run", progress=False)
            out["steps_done"] = res.steps
            out["grade_seconds"] = [r.get("grade_seconds") for r in res.records]
            out["num_tokens"] = [(r.get("trl") or {}).get("num_tokens") for r in res.records]
        else:
            from trl import GRPOTrainer

            from rhlab.models import load_model_and_tokenizer
            from rhlab.train.dataset import build_dataset, select_tasks
            from rhlab.train.grpo import grpo_args, peft_config

            mdl, tok = load_model_and_tokenizer(cfg.model)
            tok.padding_side = "left"
            dataset = build_dataset(cfg, select_tasks(cfg), tok)

            def trivial(completions, **_):
                return [float(len(str(c)) % 3) for c in completions]

            args_ = grpo_args(cfg, Path(tmp) / "out")
            args_.report_to = []
            trainer = GRPOTrainer(model=mdl, processing_class=tok, reward_funcs=[trivial], args=args_,
                                  train_dataset=dataset, peft_config=peft_config(cfg))  # grpo.lora, as rhlab
            trainer.train()
            out["num_tokens"] = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]
        out["total_s"] = round(time.perf_counter() - t0, 1)
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    out["load_after"] = _load()
    out["steps"] = timing.steps()
    out["rss_peak_by_phase_mb"] = {k: round(v) for k, v in timing.rss_peak.items()}
    return out


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def step_tokens(cumulative: list) -> list[float | None]:
    """Tokens (prompt + completion) each step processed, from TRL's cumulative `num_tokens` log (None if missing)."""
    out, prev = [], 0.0
    for n in cumulative:
        if n is None:
            out.append(None)
            continue
        out.append(float(n) - prev)
        prev = float(n)
    return out


def summarise(side: dict) -> dict:
    steps = side["steps"]
    later = steps[1:] or steps
    # sampled completions differ in length between runs, and a step's work grows with its tokens: seconds per
    # thousand tokens compares settings whose steps happened to sample longer or shorter answers
    toks = step_tokens(side.get("num_tokens") or [])
    toks_later = toks[1:len(steps)] or toks[:len(steps)]  # the same steps as `later`
    complete = len(toks_later) == len(later) and None not in toks_later and sum(toks_later) > 0
    per_kt = sum(s["step_s"] for s in later) / (sum(toks_later) / 1000) if complete else None
    prof: dict[str, float] = defaultdict(float)
    for s in later:
        for k, v in s["profile"].items():
            prof[k] += v / len(later)
        prof["rest (backward, optimiser, callbacks)"] += s["rest_s"] / len(later)
    return {"first_step_s": steps[0]["step_s"] if steps else None, "step_s": _mean([s["step_s"] for s in later]),
            "peak_rss_mb": side["peak_rss_mb"], "profile": dict(prof), "tokens_per_step": toks,
            "s_per_1k_tokens": per_kt,
            "rss_by_phase": side.get("rss_peak_by_phase_mb", {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs/train/cpu_onset.yaml"))
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--only", choices=["rhlab", "bare"])
    ap.add_argument("--child", choices=["rhlab", "bare"], help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help="print the raw per-step numbers too")
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args)), flush=True)
        return
    sides = [args.only] if args.only else ["bare", "rhlab"]
    print(f"load before: {_load()}  config: {args.config}  model: {args.model}  steps: {args.steps}  "
          f"set: {args.set}", flush=True)
    results = {}
    for side in sides:  # each side's numbers are printed as soon as it ends
        cmd = [sys.executable, __file__, "--child", side, "--config", args.config, "--model", args.model,
               "--steps", str(args.steps)] + [x for s in args.set for x in ("--set", s)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"the {side} side failed (exit {proc.returncode})")
        raw = results[side] = json.loads(lines[-1][len("RESULT "):])
        s = summarise(raw)
        print(f"\n{side}: {s['step_s']:.1f} s/step (steps 2..{len(raw['steps'])}; first {s['first_step_s']:.1f} s), "
              f"peak RSS {s['peak_rss_mb']:.0f} MB, load {raw['load_before']} -> {raw['load_after']}")
        if s["s_per_1k_tokens"] is not None:
            print(f"  tokens per step {[None if t is None else int(t) for t in s['tokens_per_step']]}: "
                  f"{s['s_per_1k_tokens']:.2f} s per 1k tokens (steps 2..)")
        for k, v in sorted(s["profile"].items(), key=lambda kv: -kv[1]):
            print(f"  {k:<42} {v:7.2f} s")
        # RSS seldom falls when torch frees (the allocator keeps the pages), so a phase shows at least the high-water
        # of the phases before it: the first phase to reach the peak is where the memory went
        print("  peak RSS while in (innermost TRL profiling context; 'other': none open): " + ", ".join(
            f"{k} {v} MB" for k, v in sorted(s["rss_by_phase"].items(), key=lambda kv: -kv[1])))
        if args.json:
            print(json.dumps(raw))
        sys.stdout.flush()
    if len(results) == 2:
        r, b = summarise(results["rhlab"]), summarise(results["bare"])
        print(f"\nrhlab / bare TRL: step time {r['step_s'] / b['step_s']:.2f}x (goal <= 1.10), "
              f"peak RSS {r['peak_rss_mb'] / b['peak_rss_mb']:.2f}x (goal <= 1.2)")
        # where rhlab's extra time goes: the phases both sides have, then rhlab's own (its reward functions)
        phases = ["transformers.generate", "_get_per_token_logps_and_entropies",
                  "rest (backward, optimiser, callbacks)", "_calculate_rewards"]
        print("rhlab - bare, s per step: " + ", ".join(
            f"{k} {r['profile'].get(k, 0.0) - b['profile'].get(k, 0.0):+.2f}" for k in phases))
    print(f"load after: {_load()}")


if __name__ == "__main__":
    main()
