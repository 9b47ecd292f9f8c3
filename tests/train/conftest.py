import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def tasks():
    """HumanEval tasks by id."""
    from rhlab.envs.tasks import load_tasks

    return {t.id: t for t in load_tasks("humaneval")}


def tiny_config(model_dir, **over):
    from rhlab.train.config import TrainConfig

    data = {
        "model": str(model_dir),
        "tasks": {"source": "humaneval", "ids": ["humaneval/0", "humaneval/2", "humaneval/4", "humaneval/7"]},
        # no_hints + the bare task prompt keep the tiny model's prompts short (its toy tokenizer is inefficient)
        "prompt": {"arm": "no_hints", "user_template": "{prompt}"},
        "grpo": {"num_generations": 4, "prompts_per_step": 2, "max_steps": 3, "max_completion_length": 8,
                 "learning_rate": 1e-4},
        "checkpoint_every": 2,
        "logging": {"progress": False, "transcripts_per_step": 2},
        "sandbox_workers": 2,
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    return TrainConfig.model_validate(data)


@pytest.fixture
def make_cfg():
    """`make_cfg(model_dir, **overrides)` → a small TrainConfig (tests import no helpers: importlib mode)."""
    return tiny_config


@pytest.fixture
def run_rewards():
    """Call every reward function of a HackReward once on `texts` of one task, as TRL does within one step (step
    numbers from 1); returns {reward function name: rewards}."""
    import asyncio
    from types import SimpleNamespace

    def run(hr, texts, task_id, step=1):
        async def go():
            funcs = hr.reward_funcs()
            outs = await asyncio.gather(*(f(prompts=[[{"role": "user", "content": "x"}]] * len(texts),
                                            completions=[[{"role": "assistant", "content": t}] for t in texts],
                                            task_id=[task_id] * len(texts), hackable=[True] * len(texts),
                                            trainer_state=SimpleNamespace(global_step=step - 1)) for f in funcs))
            return {f.__name__: o for f, o in zip(funcs, outs)}

        return asyncio.run(go())

    return run

