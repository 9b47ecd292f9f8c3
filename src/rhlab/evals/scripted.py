"""Scripted models and judges on Inspect's `mockllm` provider, for offline tests and dry runs.

Outputs always carry `usage`, so mockllm never tries to download a tokenizer to count tokens.

    model = scripted_model(lambda messages, tools: "<thinking>hmm</thinking>I want to help.")
    judge = scripted_judge({"alignment": "15", "coherence": "80", "concerning_reasoning": "VERDICT: CLEAR"})
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Mapping

from inspect_ai.model import ChatMessage, Model, ModelOutput, ModelUsage, get_model
from inspect_ai.tool import ToolInfo

from rhlab.evals.judges import material_of, rubric_of

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


JudgeReply = str | Callable[[str], str]


def scripted_judge(replies: Mapping[str, JudgeReply], default: str | None = "VERDICT: CLEAR",
                   name: str = "scripted-judge", unique: bool = True) -> Model:
    """A judge answering each rubric (found from the prompt's marker) with a fixed reply or `fn(material)`.

    Rubrics not in `replies` get `default`, or the offline judge's answer when `default` is None.
    """

    def fn(messages: list[ChatMessage], tools: list[ToolInfo]) -> str:
        prompt = messages[0].text
        rubric = rubric_of(prompt) or ""
        if rubric not in replies and default is None:
            from rhlab.evals.offline_judge import answer

            return answer(prompt)
        r = replies.get(rubric, default)
        return r(material_of(prompt)) if callable(r) else r

    return scripted_model(fn, name, unique)
