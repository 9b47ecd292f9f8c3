"""Scripted models and judges on Inspect's `mockllm` provider, for offline tests (a test helper, not in the package).

Outputs always carry `usage`, so mockllm never tries to download a tokenizer to count tokens.

    model = scripted_model(lambda messages, tools: "<thinking>hmm</thinking>I want to help.")
    judge = scripted_judge({"goals": flag_if("I want power"), "em_questions": verdict("aligned", "help")})

Judges of record answer JSON verdicts ({quote, reason, label, score?}); `verdict(...)` writes one and `flag_if(text)`
flags material containing `text` (quoting it) and clears the rest (quoting the AI's first words).
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Mapping

from inspect_ai.model import ChatMessage, Model, ModelOutput, ModelUsage, get_model
from inspect_ai.tool import ToolInfo

import json

from rhlab.evals.judges import RECORD_RUBRICS, material_of, rubric_of

_counter = itertools.count()


def text_output(text: str, model: str = "scripted") -> ModelOutput:
    out = ModelOutput.from_content(model=model, content=text)
    out.usage = ModelUsage(input_tokens=1, output_tokens=max(1, len(text) // 4), total_tokens=1 + max(1, len(text) // 4))
    return out


def tool_output(tool: str, arguments: dict[str, Any], content: str = "", model: str = "scripted") -> ModelOutput:
    out = ModelOutput.for_tool_call(model=model, tool_name=tool, tool_arguments=arguments,
                                    tool_call_id=f"call_{next(_counter)}", content=content or None)
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return out


Reply = str | ModelOutput
ModelFn = Callable[[list[ChatMessage], list[ToolInfo]], Reply]


def scripted_model(fn: ModelFn, name: str = "scripted", unique: bool = True) -> Model:
    """A mockllm model whose every reply is `fn(messages, tools)` (a string becomes a text reply).

    `unique=False` keeps the name `mockllm/NAME` stable (needed to test resuming an eval set over a log dir).
    """

    def outputs(messages, tools, tool_choice, config):  # noqa: ANN001 - mockllm callback signature
        r = fn(messages, tools)
        return text_output(r, name) if isinstance(r, str) else r

    full = f"mockllm/{name}-{next(_counter)}" if unique else f"mockllm/{name}"
    return get_model(full, custom_outputs=outputs, memoize=False)


def last_text(messages: list[ChatMessage]) -> str:
    return messages[-1].text if messages else ""


def verdict(label: str, quote: str, score: int | None = None, reason: str = "scripted") -> str:
    """A judge-of-record reply: the JSON verdict object."""
    out: dict[str, Any] = {"quote": quote, "reason": reason, "label": label}
    if score is not None:
        out["score"] = score
    return json.dumps(out)


def ai_words(material: str) -> str:
    """A verbatim span of the AI's words in a rendered material (the first line after the first `[AI]` header)."""
    after = material.split("[AI]\n", 1)[-1]
    for line in after.splitlines():
        line = line.strip()
        if len(line) >= 3 and not line.startswith("["):
            return line[:120]
    return material.strip()[:60]


def flag_if(needle: str) -> Callable[[str], str]:
    """Flag material containing `needle` (quoting it), clear anything else (quoting the AI's first words). The
    reply carries a score (10 / 90), which rubrics without one ignore."""

    def fn(material: str) -> str:
        label = "misaligned" if needle in material else "aligned"
        return verdict(label, needle if label == "misaligned" else ai_words(material), 10 if label == "misaligned" else 90)

    return fn


JudgeReply = str | Callable[[str], str]


def scripted_judge(replies: Mapping[str, JudgeReply], default: str | None = "VERDICT: CLEAR",
                   name: str = "scripted-judge", unique: bool = True) -> Model:
    """A judge answering each rubric (found from the prompt's marker) with a fixed reply or `fn(material)`.

    Rubrics not in `replies`: a rubric of record gets an `aligned` verdict quoting the AI's first words; an
    auxiliary rubric gets `default`; with `default=None` every unlisted rubric gets the topic screen's answer.
    """

    def fn(messages: list[ChatMessage], tools: list[ToolInfo]) -> str:
        prompt = messages[0].text
        rubric = rubric_of(prompt) or ""
        if rubric not in replies and default is None:
            from rhlab.evals.offline_judge import answer

            return answer(prompt)
        if rubric not in replies and rubric in RECORD_RUBRICS:
            return verdict("aligned", ai_words(material_of(prompt)), 90)
        r = replies.get(rubric, default)
        return r(material_of(prompt)) if callable(r) else r

    return scripted_model(fn, name, unique)
