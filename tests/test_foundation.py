"""Config loading, run directories and the CLI entry point."""

import json
import subprocess
import sys

import pytest
from pydantic import Field

from rhlab.config import ConfigError, StrictModel, load_config
from rhlab.paths import rhlab_home
from rhlab.rundir import RunDir, append_jsonl, read_records


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


def test_rhlab_home_respects_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RHLAB_HOME", str(tmp_path / "h"))
    assert rhlab_home() == tmp_path / "h"
    monkeypatch.delenv("RHLAB_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert rhlab_home() == tmp_path / "xdg" / "rhlab"


def test_cli_help_lists_stages():
    out = subprocess.run([sys.executable, "-m", "rhlab.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for name in ("sandbox", "model"):
        assert name in out.stdout
