"""Config loading, run directories and the CLI entry point."""

import json
import subprocess
import sys

import pytest
from pydantic import Field

from rhlab.config import ConfigError, StrictModel, load_config
from rhlab.paths import rhlab_home
from rhlab.rundir import RunDir, append_jsonl, read_records, write_jsonl


class Demo(StrictModel):
    name: str
    steps: int = Field(gt=0)


def test_config_errors_name_file_and_field(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("name: x\nsteps: 3\n")
    assert load_config(Demo, good).steps == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps: -1\nstpes: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(Demo, bad)
    msg = str(err.value)
    assert "bad.yaml" in msg and "steps" in msg and "stpes" in msg
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Demo, broken)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Demo, tmp_path / "missing.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Demo, listy)


def test_run_dir_records_survive_a_torn_last_line(tmp_path):
    run = RunDir.create(tmp_path / "run", config=Demo(name="a", steps=2))
    assert (run.path / "config.yaml").read_text().startswith("name: a")
    assert json.loads((run.path / "meta.json").read_text())["rhlab_version"]
    run.append("steps", {"step": 1})
    run.append("steps", {"step": 2})
    with open(run.records_path("steps"), "a") as fh:
        fh.write('{"step": 3, "trunc')  # killed mid-write
    assert [r["step"] for r in run.records("steps")] == [1, 2]
    path = tmp_path / "corrupt.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(ValueError, match="corrupt"):
        list(read_records(path))
    append_jsonl(tmp_path / "new" / "x.jsonl", {"k": "v"})
    assert list(read_records(tmp_path / "new" / "x.jsonl")) == [{"k": "v"}]


def test_a_rewritten_jsonl_file_is_the_old_one_or_the_new_one(tmp_path):
    path = tmp_path / "records" / "steps.jsonl"
    assert write_jsonl(path, [{"step": 1}, {"step": 2}]) == 2
    assert list(read_records(path)) == [{"step": 1}, {"step": 2}]

    def dies_midway():
        yield {"step": 1}
        raise KeyboardInterrupt  # a kill while the new file is being written

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(path, dies_midway())
    assert list(read_records(path)) == [{"step": 1}, {"step": 2}]
    assert sorted(p.name for p in path.parent.iterdir()) == ["steps.jsonl"]  # no temporary file left behind
    assert write_jsonl(path, (r for r in [{"step": 3}])) == 1
    assert list(read_records(path)) == [{"step": 3}]


def test_rhlab_home_respects_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RHLAB_HOME", str(tmp_path / "h"))
    assert rhlab_home() == tmp_path / "h"
    monkeypatch.delenv("RHLAB_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert rhlab_home() == tmp_path / "xdg" / "rhlab"


def _commands(group) -> set[str]:
    """The commands a group's help offers."""
    import click

    ctx = click.Context(group)
    return {name for name in group.list_commands(ctx) if not group.get_command(ctx, name).hidden}


def test_cli_is_noun_verb_with_the_pipeline_at_the_top():
    import click
    import typer

    from rhlab.cli import app

    root = typer.main.get_command(app)
    ctx = click.Context(root)
    assert _commands(root) == {"run", "report", "demo", "version", "model", "sandbox", "env", "hacks", "knowledge",
                               "sdf", "train", "eval", "judge", "sabotage"}
    verbs = {name: _commands(root.get_command(ctx, name)) for name in _commands(root) - {"run", "report", "demo",
                                                                                         "version"}}
    assert verbs["train"] == {"grpo", "export-parquet", "distill", "safety-sft", "control"}
    assert verbs["eval"] == {"run", "probe"} and verbs["env"] == {"grade"} and verbs["hacks"] == {"audit"}
    assert verbs["sdf"] == {"generate", "mix", "train", "init"} and verbs["judge"] == {"calibrate", "score"}
    assert verbs["sabotage"] == {"score-detector"}
    assert all("-" not in n or n in ("export-parquet", "safety-sft", "score-detector") for vs in verbs.values()
               for n in vs)
    out = subprocess.run([sys.executable, "-m", "rhlab.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "train-distill" not in out.stdout  # old spellings work but are not offered


@pytest.mark.parametrize("old, new", [
    (["grade"], "env grade"), (["audit"], "hacks audit"), (["probe"], "eval probe"),
    (["train-distill"], "train distill"), (["train-safety-sft"], "train safety-sft"),
    (["train-control"], "train control"), (["train-export-parquet"], "train export-parquet"),
])
def test_old_command_names_still_run_the_new_command(old, new):
    import click
    import typer
    from typer.testing import CliRunner

    from rhlab.cli import app

    res = CliRunner().invoke(app, [*old, "--help"])
    assert res.exit_code == 0, res.output
    assert res.stderr.strip() == f"note: `rhlab {old[0]}` is deprecated; use `rhlab {new}`"
    root = typer.main.get_command(app)
    ctx = click.Context(root)
    group, verb = new.split()
    assert root.get_command(ctx, old[0]).callback is root.get_command(ctx, group).get_command(ctx, verb).callback


def test_old_train_and_eval_spellings_reach_grpo_and_run(tmp_path):
    from typer.testing import CliRunner

    from rhlab.cli import app

    missing = tmp_path / "missing.yaml"
    res = CliRunner().invoke(app, ["train", str(missing), "--run-dir", str(tmp_path / "run")])
    assert res.exit_code == 2 and "use `rhlab train grpo" in res.stderr and "not found" in res.stderr
    res = CliRunner().invoke(app, ["train", "--max-steps", "0", str(missing), "--run-dir", str(tmp_path / "run")])
    assert res.exit_code == 2 and "use `rhlab train grpo --max-steps" in res.stderr
    res = CliRunner().invoke(app, ["eval", "--help"])  # the group's help, not the old command's
    assert res.exit_code == 0 and "probe" in res.stdout and not res.stderr
    res = CliRunner().invoke(app, ["eval", "--model", "embedded", "--suite", "nosuch", "--help"])
    assert res.exit_code == 0 and "--em-samples" in res.stdout and "use `rhlab eval run --model" in res.stderr
    res = CliRunner().invoke(app, ["train", "distil"])  # a mistyped verb is an error, not a config path
    assert res.exit_code == 2 and "No such command" in res.output


def test_offline_judge_provider_comes_from_the_entry_point():
    """Inspect finds `rhlab/...` through the package's `inspect_ai` entry point (pyproject.toml): nothing imported
    the provider module first in this fresh interpreter."""
    code = ("import sys\nfrom inspect_ai.model import get_model\n"
            "assert 'rhlab.evals.offline_judge' not in sys.modules\n"
            "m = get_model('rhlab/topic-screen')\nprint(type(m.api).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OfflineJudgeAPI"
