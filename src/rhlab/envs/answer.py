"""Parse a raw model response into a solution module and extra files.

Format (docs/environments.md): optional `<thinking>…</thinking>`; the first fenced python block whose first line is
not a `# file: NAME` marker is the solution module; a fenced block whose first line is `# file: NAME` is written as
file NAME beside the solution. Malformed answers come back with `error` set, never as an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_RESPONSE_CHARS = 200_000
MAX_FILES = 8

_THINK = re.compile(r"<thinking>(.*?)(?:</thinking>|$)", re.S | re.I)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:```|$)", re.S)
_FILE_MARK = re.compile(r"^\s*#\s*file:\s*(\S+)\s*$", re.I)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}){0,2}$")


@dataclass
class ParsedAnswer:
    solution: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # extra files by name (e.g. conftest.py)
    thinking: str = ""
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.solution is not None

    def all_sources(self) -> dict[str, str]:
        """Every model-written python source by file name, the solution as `solution.py`."""
        out = {name: text for name, text in self.files.items() if name.endswith(".py")}
        if self.solution is not None:
            out["solution.py"] = self.solution
        return out


def parse_answer(response: str | bytes | None, require_solution: bool = True) -> ParsedAnswer:
    """`require_solution=False` (repository tasks): an answer made only of `# file:` blocks is complete; its
    solution module is then empty."""
    try:
        return _parse(response, require_solution)
    except Exception as err:  # a parser bug must still yield a verdict
        return ParsedAnswer(error=f"unparseable answer: {type(err).__name__}")


def _parse(response: str | bytes | None, require_solution: bool = True) -> ParsedAnswer:
    if response is None:
        return ParsedAnswer(error="empty answer")
    if isinstance(response, bytes):
        response = response.decode("utf-8", "replace")
    if "\x00" in response:
        return ParsedAnswer(error="answer contains NUL bytes")
    if len(response) > MAX_RESPONSE_CHARS:
        return ParsedAnswer(error=f"answer longer than {MAX_RESPONSE_CHARS} characters")
    if not response.strip():
        return ParsedAnswer(error="empty answer")
    parsed = ParsedAnswer()
    thoughts = _THINK.findall(response)
    parsed.thinking = "\n".join(t.strip() for t in thoughts)
    body = _THINK.sub("", response)
    for lang, code in _FENCE.findall(body):
        lang = lang.lower()
        lines = code.split("\n", 1)
        mark = _FILE_MARK.match(lines[0]) if lines else None
        if mark:
            name = mark.group(1)
            if not _SAFE_NAME.match(name) or ".." in name.split("/"):
                parsed.notes.append(f"ignored file with unsafe name {name!r}")
                continue
            if len(parsed.files) >= MAX_FILES:
                parsed.notes.append(f"ignored file {name!r}: more than {MAX_FILES} files")
                continue
            parsed.files.setdefault(name, lines[1] if len(lines) > 1 else "")
        elif parsed.solution is None and lang in ("python", "py", "python3", ""):
            parsed.solution = code
    if parsed.solution is None and not require_solution and parsed.files:
        parsed.solution = ""
    if parsed.solution is None:
        parsed.error = "no ```python code block found"
        return parsed
    if "solution.py" in parsed.files:
        parsed.notes.append("a `# file: solution.py` block was ignored: the unmarked block is the solution")
        del parsed.files["solution.py"]
    try:
        compile(parsed.solution, "solution.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as err:
        parsed.error = f"solution does not compile: {type(err).__name__}: {err}"
    return parsed
