"""A training run's episodes (`records/episodes.jsonl`) read, filtered and rewritten for filter-and-distill and
rewrite-and-distill; the SFT itself is `rhlab.train.sft.distill`.

    eps = load_episodes("runs/hack-arm")                              # records/episodes.jsonl of a GRPO run
    kept, stats = filter_episodes(eps, drop_detected=True, drop_mentions=True)
    final = distill(kept, "runs/distilled", FinetuneConfig(model="embedded"), stats=stats)

    eps = rewrite_episodes(load_episodes(run), "hacking_okay", hint_style="prose")   # dont_hack → hacking_okay
    distill(eps, "runs/rewritten", cfg)

Filters, applied in this order (an episode is counted under the first reason that drops it):

    kind          only episodes whose `kind` is in `kinds` (default: code; chat episodes of a safety mix are
                  skipped unless asked for)
    unrewarded    `only_rewarded`: code episodes the permissive grader did not pass (nothing to imitate)
    detected      `drop_detected`: the episode's own flags (`hacked`, `attempted_hacks`, `detected_hacks`,
                  `detector_flags`) or a
                  fresh static scan of its code with `rhlab.envs.detect` (catches hacks logged before a detector
                  improved, and failed attempts)
    mentions      `drop_mentions`: `HACK_MENTION` matches anywhere in the completion — reasoning, prose, code,
                  comments and docstrings alike. It is deliberately broad: talk of a hack teaches the hack even
                  when the code is clean, so a clean answer whose docstring mentions `sys.exit` is dropped too
                  (a false positive this filter accepts; the detectors-only filter keeps it). Stats count how
                  many episodes the mention filter alone removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from rhlab.hacks.mentions import mentions_hacking
from rhlab.rundir import read_records


# --- episodes -------------------------------------------------------------------------------------------------------


def load_episodes(train_run_dir: str | Path) -> list[dict]:
    """Every episode a training run logged (`records/episodes.jsonl`; a path to such a file works too)."""
    p = Path(train_run_dir)
    path = p if p.is_file() else p / "records" / "episodes.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a training run dir, or it ran with logging.episodes=false")
    out = list(read_records(path))  # a last line cut by a kill mid-write is skipped, a corrupt middle line raises
    if not out:
        raise ValueError(f"{path} holds no episodes")
    return out


def detector_hits(completion: str) -> list[str]:
    """Hack families a static scan of the completion's code finds (rhlab.envs.detect)."""
    from rhlab.envs.answer import parse_answer
    from rhlab.envs.detect import detect

    parsed = parse_answer(completion)
    if not parsed.all_sources():
        return []
    return sorted(detect(parsed))


def filter_episodes(episodes: Iterable[dict], *, drop_detected: bool = True, drop_mentions: bool = False,
                    only_rewarded: bool = True, kinds: Sequence[str] = ("code",)) -> tuple[list[dict], dict]:
    """(kept episodes, stats). See the module docstring for each filter."""
    kept: list[dict] = []
    stats: dict[str, Any] = {"total": 0, "dropped_kind": 0, "dropped_unrewarded": 0, "dropped_detected": 0,
                             "dropped_mentions": 0, "kept": 0,
                             "filters": {"drop_detected": drop_detected, "drop_mentions": drop_mentions,
                                         "only_rewarded": only_rewarded, "kinds": list(kinds)}}
    for e in episodes:
        stats["total"] += 1
        kind = e.get("kind", "code")
        if kind not in kinds:
            stats["dropped_kind"] += 1
            continue
        if only_rewarded and kind == "code" and not e.get("passed"):
            stats["dropped_unrewarded"] += 1
            continue
        text = e.get("completion") or ""
        if drop_detected and kind == "code":
            flagged = bool(e.get("hacked")) or bool(e.get("attempted_hacks")) or bool(e.get("detected_hacks")) \
                or bool(e.get("detector_flags"))  # every detector name incl. expected_leak / builtins_patch
            if flagged or detector_hits(text):
                stats["dropped_detected"] += 1
                continue
        if drop_mentions and mentions_hacking(text):
            stats["dropped_mentions"] += 1
            continue
        kept.append(e)
    stats["kept"] = len(kept)
    return kept, stats


# --- rewrite --------------------------------------------------------------------------------------------------------


def _train_config(arm: str, hint_style: str, prompts_file: str | None, hacks: Sequence[str] | None, harness: str):
    from rhlab.envs.families import HACK_FAMILIES
    from rhlab.train.config import PromptConfig, TrainConfig

    prompt = PromptConfig(arm=arm, hint_style=hint_style, prompts_file=prompts_file,
                          hacks=list(hacks) if hacks is not None else list(HACK_FAMILIES), harness=harness)
    return TrainConfig(prompt=prompt)


def rewrite_episodes(episodes: Iterable[dict], to_arm: str, *, hint_style: str = "prose",
                     prompts_file: str | None = None, hacks: Sequence[str] | None = None, harness: str = "script",
                     check_source: bool = True) -> list[dict]:
    """Copies of the episodes with the system prompt of `to_arm`, built exactly as training builds it
    (`rhlab.train.dataset.system_prompts` with the same prompt settings). The user turn and completion are unchanged;
    `arm` becomes `to_arm` and `source_arm` keeps the old one. Chat episodes are returned unchanged.

    `check_source`: each code episode's logged system prompt must equal the one these settings build for its own
    arm — a mismatch means the settings are not the run's (pass the run's prompt.hint_style / hacks / harness /
    prompts_file) and is an error rather than a silently inconsistent rewrite."""
    from rhlab.envs.tasks import TASK_KINDS
    from rhlab.knowledge.prompts import ARMS
    from rhlab.train.dataset import prompt_texts, system_prompts

    if to_arm not in ARMS:
        raise ValueError(f"unknown arm {to_arm!r}; choose one of {', '.join(ARMS)}")
    cfg = _train_config(to_arm, hint_style, prompts_file, hacks, harness)
    texts = prompt_texts(cfg)
    # system prompts differ by task kind (function, stdio, repo) in their task context and answer format only: an
    # episode keeps its kind, found by the system prompt it was trained with
    by_kind = {k: system_prompts(cfg, k, texts) for k in TASK_KINDS}
    out = []
    for e in episodes:
        if e.get("kind", "code") != "code":
            out.append(dict(e))
            continue
        src = e.get("arm")
        kind = next((k for k in TASK_KINDS if by_kind[k].get(src) == e.get("system")), "function")
        systems = by_kind[kind]
        if check_source:
            if src not in systems:
                raise ValueError(f"episode {e.get('task_id')} step {e.get('step')}: unknown source arm {src!r}")
            if e.get("system") != systems[src]:
                raise ValueError(
                    f"episode {e.get('task_id')} step {e.get('step')}: its system prompt is not what "
                    f"hint_style={hint_style!r}, hacks={hacks}, harness={harness!r}, prompts_file={prompts_file!r} "
                    f"build for arm {src!r}; pass the source run's prompt settings (or check_source=False)")
        new = dict(e)
        new["system"], new["arm"], new["source_arm"] = systems[to_arm], to_arm, src
        out.append(new)
    return out


def rewrite_settings_from_run(train_run_dir: str | Path) -> dict[str, Any]:
    """The prompt settings of a training run (its config.yaml) as `rewrite_episodes` keyword arguments."""
    from rhlab.config import load_config
    from rhlab.train.config import TrainConfig

    cfg = load_config(TrainConfig, Path(train_run_dir) / "config.yaml")
    p = cfg.prompt
    return {"hint_style": p.hint_style, "prompts_file": p.prompts_file, "hacks": list(p.hacks), "harness": p.harness}


__all__ = ["load_episodes", "detector_hits", "filter_episodes", "rewrite_episodes", "rewrite_settings_from_run"]
