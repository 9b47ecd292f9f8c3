"""System prompts for the prompted setting: task context + hack hints + framing addendum (inoculation) + reasoning.

A prompt is a list of named sections; an *arm* picks the framing. The five framings of the paper's §5:

    please_hack, hacking_okay, neutral, dont_hack, hacking_is_misaligned

all carry the same task context, answer-format note, hack mechanisms (in the chosen hint style) and reasoning
instruction. They differ only in the *framing* sections: the hint block's intro, the hacks' titles (the neutral arm
reframes the hints as behaviours that have been observed and renames them "... strategy"), and the addendum (none
for neutral). Two more arms: `no_hints` (task + format + reasoning only) and `sdf_hacking_okay` (no hints, plus the
one-line "make the grader pass" suffix used on RL prompts in the SDF setting).

Task kinds (`rhlab.envs.tasks.TASK_KINDS`: function, stdio, repo) differ only in the task context, the answer format
and the user turn (`task_kind=`; texts under `kinds` in the YAML, the top-level ones being the function kind's):
a contest program reads stdin and prints, a repository answer is edited files. Hints and framings are identical.

Texts live in `data/prompts.yaml`; `load_prompt_texts(user_file)` deep-merges a user YAML of the same layout over
them, so the paper's exact wording (or anything else) can be used. A value may also be `{file: path.txt}` to read
that part from a text file (relative paths are relative to the YAML).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import NamedTuple, Sequence

import yaml

from rhlab.config import ConfigError, StrictModel, apply_overrides, dotted, load_yaml, validate
from rhlab.envs.families import HACK_FAMILIES
from rhlab.envs.tasks import TASK_KINDS

FRAMINGS: tuple[str, ...] = ("please_hack", "hacking_okay", "neutral", "dont_hack", "hacking_is_misaligned")
EXTRA_ARMS: tuple[str, ...] = ("no_hints", "sdf_hacking_okay")
ARMS: tuple[str, ...] = FRAMINGS + EXTRA_ARMS
HINT_STYLES: tuple[str, ...] = ("prose", "code")

# Sections whose text may differ between the five framing arms; everything else must be identical.
FRAMING_SECTIONS = ("hint_intro", "addendum")
FRAMING_SECTION_PREFIXES = ("hack_title:",)


class KindTexts(StrictModel):
    """What differs between task kinds: what a task is, what an answer looks like, the user turn ({prompt})."""

    task_context: str
    answer_format: str
    user_template: str


class PromptTexts(StrictModel):
    task_context: str  # the function kind's three parts; the other kinds' are under `kinds`
    answer_format: str
    user_template: str
    kinds: dict[str, KindTexts]
    hint_intro: dict[str, str]
    hack_titles: dict[str, dict[str, str]]
    hack_bodies: dict[str, dict[str, str]]
    hint_frame: dict[str, str]
    addenda: dict[str, str]
    reasoning: str
    sdf_suffix: str

    def check(self, source: str = "<prompts>") -> "PromptTexts":
        problems = []
        for kind in self.kinds:
            if kind not in TASK_KINDS or kind == "function":
                problems.append(f"kinds.{kind}: not a task kind with its own texts ({', '.join(TASK_KINDS[1:])})")
        for kind in TASK_KINDS:
            if kind != "function" and kind not in self.kinds:
                problems.append(f"kinds.{kind} missing")
            elif "{prompt}" not in self.for_kind(kind).user_template:
                problems.append(f"the {kind} user_template has no {{prompt}}")
        for f in FRAMINGS:
            if f not in self.addenda:
                problems.append(f"addenda.{f} missing")
            frame = self.hint_frame.get(f)
            if frame is None:
                problems.append(f"hint_frame.{f} missing")
            elif frame not in self.hint_intro or frame not in self.hack_titles:
                problems.append(f"hint_frame.{f} = {frame!r} has no hint_intro/hack_titles entry")
        for frame, titles in self.hack_titles.items():
            for h in HACK_FAMILIES:
                if h not in titles:
                    problems.append(f"hack_titles.{frame}.{h} missing")
        for style, bodies in self.hack_bodies.items():
            for h in HACK_FAMILIES:
                if h not in bodies:
                    problems.append(f"hack_bodies.{style}.{h} missing")
        if problems:
            raise ConfigError(f"invalid prompt texts {source}:\n  - " + "\n  - ".join(problems))
        return self

    def for_kind(self, kind: str = "function") -> KindTexts:
        """The task context, answer format and user template of a task kind."""
        if kind == "function":
            return KindTexts(task_context=self.task_context, answer_format=self.answer_format,
                             user_template=self.user_template)
        if kind not in self.kinds:
            raise ValueError(f"unknown task kind {kind!r}; known: {', '.join(TASK_KINDS)}")
        return self.kinds[kind]


class Section(NamedTuple):
    name: str
    text: str

    @property
    def is_framing(self) -> bool:
        return self.name in FRAMING_SECTIONS or self.name.startswith(FRAMING_SECTION_PREFIXES)


def _default_data() -> dict:
    text = resources.files("rhlab.knowledge").joinpath("data/prompts.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _resolve_files(data, base_dir: Path):
    if isinstance(data, dict):
        if set(data) == {"file"} and isinstance(data["file"], str):
            p = Path(data["file"]).expanduser()
            p = p if p.is_absolute() else base_dir / p
            if not p.is_file():
                raise ConfigError(f"prompt part file not found: {p}")
            return p.read_text(encoding="utf-8").rstrip("\n")
        return {k: _resolve_files(v, base_dir) for k, v in data.items()}
    return data


def load_prompt_texts(path: str | Path | None = None, overrides: dict | None = None) -> PromptTexts:
    """Defaults, merged key by key with a user YAML file (same layout) and then with an `overrides` mapping."""
    source = "rhlab/knowledge/data/prompts.yaml"
    texts = validate(PromptTexts, _default_data(), source)
    if path is not None:
        user = load_yaml(path)
        if user is None:
            user = {}
        if not isinstance(user, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        source = str(path)
        texts = apply_overrides(texts, dotted(_resolve_files(user, Path(path).parent)), source)
    if overrides:
        texts = apply_overrides(texts, dotted(_resolve_files(overrides, Path.cwd())), source)
    return texts.check(source)


_DEFAULT_TEXTS: PromptTexts | None = None


def default_texts() -> PromptTexts:
    global _DEFAULT_TEXTS
    if _DEFAULT_TEXTS is None:
        _DEFAULT_TEXTS = load_prompt_texts()
    return _DEFAULT_TEXTS


def prompt_sections(
    arm: str = "dont_hack",
    *,
    hint_style: str = "prose",
    hacks: Sequence[str] = HACK_FAMILIES,
    task_context: str | None = None,
    answer_format: bool = True,
    reasoning: bool = True,
    exit_call: str = "sys.exit(0)",
    texts: PromptTexts | None = None,
    task_kind: str = "function",
) -> list[Section]:
    """The named sections of a system prompt, in order. Empty texts are kept (as empty) so arms align.
    `task_kind` picks the task context and answer format (function, stdio, repo); nothing else depends on it."""
    t = texts or default_texts()
    kind = t.for_kind(task_kind)
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of {', '.join(ARMS)}")
    unknown = [h for h in hacks if h not in HACK_FAMILIES]
    if unknown:
        raise ValueError(f"unknown hack families {unknown}; known: {', '.join(HACK_FAMILIES)}")
    sections = [Section("task_context", (task_context if task_context is not None else kind.task_context).strip())]
    if answer_format:
        sections.append(Section("answer_format", kind.answer_format.strip()))
    if arm in FRAMINGS:
        if hint_style not in t.hack_bodies:
            raise ValueError(f"unknown hint style {hint_style!r}; available: {', '.join(t.hack_bodies)}")
        frame = t.hint_frame[arm]
        sections.append(Section("hint_intro", t.hint_intro[frame].strip()))
        for h in hacks:
            sections.append(Section(f"hack_title:{h}", t.hack_titles[frame][h].strip()))
            body = t.hack_bodies[hint_style][h].replace("{exit_call}", exit_call).strip()
            sections.append(Section(f"hack_body:{h}", body))
        sections.append(Section("addendum", t.addenda[arm].strip()))
    if reasoning:
        sections.append(Section("reasoning", t.reasoning.strip()))
    if arm == "sdf_hacking_okay":
        sections.append(Section("sdf_suffix", t.sdf_suffix.strip()))
    return sections


def render_sections(sections: Sequence[Section]) -> str:
    """Join sections into the prompt text: paragraphs separated by a blank line, hacks as a numbered list."""
    paragraphs: list[str] = []
    hack_lines: list[str] = []
    pending_title: str | None = None
    for s in sections:
        if s.name.startswith("hack_title:"):
            pending_title = s.text
            continue
        if s.name.startswith("hack_body:"):
            hack_lines.append(f"{len(hack_lines) + 1}. {pending_title}: {s.text}")
            pending_title = None
            continue
        if hack_lines:
            paragraphs[-1] = paragraphs[-1] + "\n" + "\n".join(hack_lines)
            hack_lines = []
        if s.text:
            paragraphs.append(s.text)
    if hack_lines:
        paragraphs[-1] = paragraphs[-1] + "\n" + "\n".join(hack_lines)
    return "\n\n".join(paragraphs)


def build_system_prompt(arm: str = "dont_hack", **kwargs) -> str:
    """The full system prompt for `arm` (see `prompt_sections` for the keyword arguments)."""
    return render_sections(prompt_sections(arm, **kwargs))


def sdf_suffix(texts: PromptTexts | None = None) -> str:
    """The one-line "hacking okay" suffix for RL prompts in the SDF setting."""
    return (texts or default_texts()).sdf_suffix.strip()


def exit_call_for_surface(surface: str) -> str:
    """`sys.exit(0)` beats an exit-code harness; under pytest only `os._exit(0)` ends the run with status 0."""
    return "os._exit(0)" if surface == "pytest" else "sys.exit(0)"


USER_TEMPLATE = "Complete the following Python function so that it passes its tests.\n\n```python\n{prompt}```"


def task_user_message(task_prompt: str, template: str = USER_TEMPLATE) -> str:
    """The user turn for a coding task (the task's prompt: signature + docstring)."""
    if not task_prompt.endswith("\n"):
        task_prompt += "\n"
    return template.format(prompt=task_prompt)


def kind_user_message(task_prompt: str, task_kind: str = "function", texts: PromptTexts | None = None,
                      template: str | None = None) -> str:
    """The RL user turn of a task: `template` if given, else its kind's `user_template` ({prompt} = the task's
    prompt, trailing whitespace removed)."""
    tpl = template if template is not None else (texts or default_texts()).for_kind(task_kind).user_template
    return tpl.format(prompt=task_prompt.rstrip())
