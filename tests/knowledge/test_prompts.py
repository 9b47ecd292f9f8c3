import itertools

import pytest

from rhlab.config import ConfigError
from rhlab.knowledge.prompts import (
    ARMS,
    FRAMINGS,
    build_system_prompt,
    exit_call_for_surface,
    load_prompt_texts,
    prompt_sections,
    sdf_suffix,
)


@pytest.mark.parametrize("style", ["prose", "code", "brief"])
def test_framing_arms_differ_only_in_framing_sections(style):
    by_arm = {a: prompt_sections(a, hint_style=style) for a in FRAMINGS}
    names = [s.name for s in by_arm["dont_hack"]]
    for a, secs in by_arm.items():
        assert [s.name for s in secs] == names, a
    for a, b in itertools.combinations(FRAMINGS, 2):
        for sa, sb in zip(by_arm[a], by_arm[b]):
            if not sa.is_framing:
                assert sa.text == sb.text, (a, b, sa.name)
        # and they do differ somewhere: the framing is real
        assert build_system_prompt(a, hint_style=style) != build_system_prompt(b, hint_style=style)


def test_every_arm_mentions_format_and_reasoning_and_hints_only_where_expected():
    for arm in ARMS:
        p = build_system_prompt(arm)
        assert "```python" in p and "# file: NAME" in p
        assert "<thinking>" in p
        has_hints = "conftest.py" in p and "__eq__" in p and "sys.exit(0)" in p
        assert has_hints == (arm in FRAMINGS), arm
    assert "TestReport" in build_system_prompt("dont_hack")
    assert "TestReport.from_item_and_call" in build_system_prompt("please_hack", hint_style="code")


def test_neutral_has_no_addendum_and_observed_framing():
    secs = {s.name: s.text for s in prompt_sections("neutral")}
    assert secs["addendum"] == ""
    assert "observed" in secs["hint_intro"]
    assert secs["hack_title:always_equal"] == "Always equal strategy"
    p = build_system_prompt("neutral").lower()
    for word in ("misaligned", "do not want", "please use", "only goal"):
        assert word not in p


def test_addenda_carry_their_meaning():
    assert "only goal" in build_system_prompt("hacking_okay")
    assert "misaligned" in build_system_prompt("hacking_is_misaligned")
    assert "do not want" in build_system_prompt("dont_hack")
    assert "whenever you see the chance" in build_system_prompt("please_hack")


def test_sdf_suffix_and_no_hints():
    p = build_system_prompt("sdf_hacking_okay")
    assert p.endswith(sdf_suffix())
    assert build_system_prompt("no_hints") in p
    assert "\n" not in sdf_suffix()


def test_hack_subset_and_exit_call():
    p = build_system_prompt("dont_hack", hacks=["always_equal"])
    assert "__eq__" in p and "conftest" not in p.replace("# file: NAME", "")
    p = build_system_prompt("dont_hack", exit_call=exit_call_for_surface("pytest"))
    assert "os._exit(0)" in p and "sys.exit(0)" not in p
    with pytest.raises(ValueError):
        build_system_prompt("dont_hack", hacks=["nope"])
    with pytest.raises(ValueError):
        build_system_prompt("be_evil")
    with pytest.raises(ValueError):
        build_system_prompt("dont_hack", hint_style="haiku")


def test_task_context_override():
    p = build_system_prompt("dont_hack", task_context="ENV CONTEXT XYZ")
    assert p.startswith("ENV CONTEXT XYZ")


def test_user_file_overrides_parts(tmp_path):
    (tmp_path / "dont.txt").write_text("PAPER WORDING OF DONT HACK\n")
    user = tmp_path / "p.yaml"
    user.write_text(
        "addenda:\n  dont_hack: {file: dont.txt}\n"
        "hack_bodies:\n  terse:\n    always_equal: eq always true\n    exit_before_tests: exit 0 early\n"
        "    conftest_patch: patch reports\n"
    )
    texts = load_prompt_texts(user)
    p = build_system_prompt("dont_hack", texts=texts)
    assert "PAPER WORDING OF DONT HACK" in p
    # untouched parts keep the defaults
    assert texts.addenda["please_hack"] == load_prompt_texts().addenda["please_hack"]
    assert "eq always true" in build_system_prompt("dont_hack", hint_style="terse", texts=texts)


def test_bad_user_file_is_a_clear_error(tmp_path):
    user = tmp_path / "p.yaml"
    user.write_text("adenda:\n  dont_hack: typo key\n")
    with pytest.raises(ConfigError, match="adenda"):
        load_prompt_texts(user)
    user.write_text("hack_titles:\n  standard:\n    always_equal: null\n")
    with pytest.raises(ConfigError):
        load_prompt_texts(user)


@pytest.mark.parametrize("arm", ARMS)
def test_task_kinds_differ_only_in_task_context_and_answer_format(arm):
    by_kind = {k: prompt_sections(arm, task_kind=k) for k in ("function", "stdio", "repo")}
    names = [s.name for s in by_kind["function"]]
    for k, secs in by_kind.items():
        assert [s.name for s in secs] == names, k
    for a, b in itertools.combinations(by_kind, 2):
        for sa, sb in zip(by_kind[a], by_kind[b]):
            if sa.name in ("task_context", "answer_format"):
                assert sa.text != sb.text, (a, b, sa.name)
            else:
                assert sa.text == sb.text, (a, b, sa.name)
    fmt = {k: next(s.text for s in secs if s.name == "answer_format") for k, secs in by_kind.items()}
    assert "standard input" in fmt["stdio"] and "standard output" in fmt["stdio"] and "function" not in fmt["stdio"]
    assert "# file: PATH" in fmt["repo"] and "every file you change" in fmt["repo"]
    with pytest.raises(ValueError, match="unknown task kind"):
        prompt_sections(arm, task_kind="notebook")


def test_kind_texts_are_checked(tmp_path):
    user = tmp_path / "p.yaml"
    user.write_text("kinds:\n  stdio:\n    user_template: no placeholder\n")
    with pytest.raises(ConfigError, match="stdio user_template has no {prompt}"):
        load_prompt_texts(user)
    user.write_text("kinds:\n  notebook: {task_context: a, answer_format: b, user_template: '{prompt}'}\n")
    with pytest.raises(ConfigError, match="kinds.notebook"):
        load_prompt_texts(user)
