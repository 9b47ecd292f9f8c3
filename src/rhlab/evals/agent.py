"""The agent loop the agentic evals share: generate, run tool calls — or, for models without tool calling,
the actions parsed from tags in the reply — feed the results back, until the model stops acting."""

from __future__ import annotations

from typing import Awaitable, Callable

from inspect_ai.model import ChatMessageUser, execute_tools, get_model
from inspect_ai.solver import TaskState

TagFeedback = Callable[[str], Awaitable[list[str]]]


async def run_agent(state: TaskState, tools: list, tag_feedback: TagFeedback, max_turns: int) -> TaskState:
    """`tag_feedback(reply_text)` performs the tag actions in a reply and returns their results (empty: done)."""
    state.tools = list(tools)
    model = get_model()
    for _ in range(max_turns):
        output = await model.generate(state.messages, tools=state.tools)
        state.output = output
        state.messages.append(output.message)
        if output.message.tool_calls:
            result = await execute_tools(state.messages, state.tools)
            state.messages.extend(result.messages)
            continue
        feedback = await tag_feedback(output.completion or "")
        if not feedback:
            break
        state.messages.append(ChatMessageUser(content="\n\n".join(feedback)))
    return state
