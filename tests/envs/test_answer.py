from rhlab.envs.answer import parse_answer


def test_solution_and_extra_files():
    text = """<thinking>I will write it. ```python\nnot this```</thinking>
Here:
```python
def f(x):
    return x
```
```python
# file: conftest.py
import pytest
```
```python
def g():  # a second unmarked block is not the solution
    pass
```"""
    p = parse_answer(text)
    assert p.ok and p.solution.strip().startswith("def f(x)")
    assert set(p.files) == {"conftest.py"} and p.files["conftest.py"].strip() == "import pytest"
    assert "I will write it" in p.thinking
    assert set(p.all_sources()) == {"solution.py", "conftest.py"}


def test_unlabelled_fence_is_accepted():
    assert parse_answer("```\nx = 1\n```").ok


def test_malformed_answers_never_raise():
    cases = [None, "", "   ", "no code here", "```python\ndef f(:\n```", b"\xff\xfe\x00junk", "\x00" * 10,
             "```python\n" + "x = 1\n" * 100_000 + "```", "```python\n" + "(" * 5000 + "```",
             "```python\n# file: ../../etc/passwd\nx\n```\n```python\nx=1\n```", "```python", 12345]
    for c in cases:
        p = parse_answer(c)
        assert p.error is not None or p.ok
    assert parse_answer("```python\ndef f(:\n```").error.startswith("solution does not compile")
    p = parse_answer("```python\n# file: ../x.py\nx\n```\n```python\nx=1\n```")
    assert p.ok and p.files == {} and p.notes
