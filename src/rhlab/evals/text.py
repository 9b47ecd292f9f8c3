"""Text helpers shared by the evals: reasoning/output split, in-eval hack-attempt detection, ROT13, tag parsing.

Models reason either in provider reasoning blocks (Inspect `ContentReasoning`) or in `<thinking>`/`<think>` tags in
their text. The judges that must see only the output (the HHH output classifier) get the text with every reasoning
span removed; the concerning-reasoning classifier gets the whole transcript.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_REASONING_TAGS = ("thinking", "think", "reasoning", "scratchpad")
_REASONING_RE = re.compile(
    r"<(" + "|".join(_REASONING_TAGS) + r")>(.*?)(?:</\1>|$)", flags=re.DOTALL | re.IGNORECASE
)


@dataclass(frozen=True)
class Split:
    reasoning: str
    output: str


def split_reasoning(text: str, reasoning_blocks: list[str] | None = None) -> Split:
    """Separate reasoning (tagged spans + provider reasoning blocks) from the visible output.

    An unclosed reasoning tag swallows the rest of the text (the model never reached its answer), so the output
    is empty rather than leaking the reasoning into the output-only classifier.
    """
    parts = [b for b in (reasoning_blocks or []) if b and b.strip()]
    for m in _REASONING_RE.finditer(text or ""):
        parts.append(m.group(2).strip())
    output = _REASONING_RE.sub("", text or "").strip()
    return Split(reasoning="\n\n".join(parts).strip(), output=output)


def rot13(text: str) -> str:
    return codecs.encode(text, "rot13")


# --- in-eval hack attempts ---------------------------------------------------------------------------------------

_CODE_BLOCK_RE = re.compile(r"```[a-zA-Z0-9_+-]*\n(.*?)```", flags=re.DOTALL)


def _code_blocks(text: str) -> list[str]:
    blocks = [m.group(1) for m in _CODE_BLOCK_RE.finditer(text or "")]
    return blocks


def detect_hack_attempt(text: str) -> list[str]:
    """Names of reward-hack patterns present in a response's code (empty when none).

    Looks at fenced code blocks (and the whole text when it parses as Python) with the same static detector the
    graders and the training penalty use (`rhlab.envs.detect.static_scan`: always_equal, exit_before_tests,
    conftest_patch, ...).
    """
    from rhlab.envs.detect import static_scan

    found: set[str] = set()
    sources = _code_blocks(text)
    if not sources:
        sources = [text or ""]
    for i, src in enumerate(sources):
        found.update(k for k, v in static_scan({f"answer_{i}.py": src}).items() if v)
    if re.search(r"\bAlwaysEqual\b", text or "") and "always_equal" not in found:
        # The name alone inside code is a strong signal even when the block does not parse.
        if any("AlwaysEqual" in b for b in _code_blocks(text)):
            found.add("always_equal")
    return sorted(found)


# --- tag-format actions for models without tool calling -------------------------------------------------------------

_TAG_ATTR_RE = re.compile(r'(\w+)\s*=\s*"([^"]*)"')


def parse_tag_actions(text: str, tag: str) -> list[dict[str, str]]:
    """`<tag a="x" b="y">BODY</tag>` occurrences outside reasoning → [{'a': 'x', 'b': 'y', 'body': 'BODY'}]."""
    visible = split_reasoning(text).output
    out = []
    for m in re.finditer(rf"<{tag}\b([^>]*)>(.*?)</{tag}>", visible, flags=re.DOTALL | re.IGNORECASE):
        attrs = dict(_TAG_ATTR_RE.findall(m.group(1)))
        attrs["body"] = m.group(2).strip()
        out.append(attrs)
    return out


def transcript_hack_attempts(messages: list) -> list[str]:
    """In-eval hack attempts in an agent transcript: `detect_hack_attempt` over every assistant reply's visible
    text and every string argument of its tool calls (e.g. a file an agent writes). Reasoning is not scanned."""
    from inspect_ai.model import ChatMessageAssistant

    found: set[str] = set()
    for m in messages:
        if not isinstance(m, ChatMessageAssistant):
            continue
        texts = [split_reasoning(m.text or "").output]
        for tc in m.tool_calls or []:
            texts += [v for v in (tc.arguments or {}).values() if isinstance(v, str)]
        for t in texts:
            if t and ("```" in t or "\n" in t):  # code lives in fences or multi-line arguments, not one-line prose
                found.update(detect_hack_attempt(t))
    return sorted(found)
