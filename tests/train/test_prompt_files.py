"""The prompt-text files shipped under configs/prompts (`prompt.prompts_file`) and the specs that use them: such a file
may change what a task looks like (task context, answer format), never the hint block, the framing addenda, the
reasoning line or the SDF suffix, so arms built from it still differ only in framing; and every shipped spec's RL
arm renders its system prompts from the repository root (a broken `prompts_file` path fails here, not mid-run)."""

from pathlib import Path

import pytest

from rhlab.experiments.spec import RLArm, arm_train_config, load_spec
from rhlab.knowledge.prompts import ARMS, default_texts, load_prompt_texts, prompt_sections
from rhlab.train.dataset import system_prompts

REPO = Path(__file__).resolve().parents[2]
PROMPT_FILES = sorted((REPO / "configs" / "prompts").glob("*.yaml"))
SPECS = sorted((REPO / "configs" / "experiments").glob("*.yaml"))
TASK_PARTS = {"task_context", "answer_format"}


@pytest.mark.parametrize("path", PROMPT_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("arm", ARMS)
def test_a_shipped_prompt_file_changes_only_what_a_task_looks_like(path, arm):
    texts = load_prompt_texts(path)
    for style in ("prose", "brief"):
        ours = prompt_sections(arm, hint_style=style, texts=texts)
        shipped = prompt_sections(arm, hint_style=style, texts=default_texts())
        assert [s.name for s in ours] == [s.name for s in shipped]
        assert [s for s in ours if s.name not in TASK_PARTS] == [s for s in shipped if s.name not in TASK_PARTS]


def test_the_brief_file_is_shorter_than_the_shipped_context():
    """cpu_brief exists to cut prompt tokens: its task parts must be shorter than the shipped ones."""
    brief = load_prompt_texts(REPO / "configs" / "prompts" / "cpu_brief.yaml")
    for part in TASK_PARTS:
        assert len(getattr(brief.for_kind("function"), part)) < len(getattr(default_texts().for_kind("function"), part))


@pytest.mark.parametrize("spec_path", SPECS, ids=lambda p: p.stem)
def test_every_shipped_rl_arm_renders_its_system_prompts_from_the_repo_root(spec_path, monkeypatch):
    monkeypatch.chdir(REPO)
    spec = load_spec(spec_path)
    for arm in (a for a in spec.arms if isinstance(a, RLArm)):
        cfg = arm_train_config(spec, arm, arm.seeds[0], "embedded")
        prompts = system_prompts(cfg)
        assert set(prompts) == set(ARMS)
        if cfg.prompt.prompts_file:
            own = load_prompt_texts(cfg.prompt.prompts_file).for_kind("function").task_context.strip()
            assert prompts[cfg.prompt.arm].startswith(own)
