"""rhlab.stage: the one generic path of a heavy stage (config file → `python -m rhlab.stage` → result.json).

The cheap stages here load no model: the prompted knowledge stage without init SFT returns its base model, and a
control whose data file is missing fails before any model is loaded."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from rhlab.config import ConfigError
from rhlab.knowledge.finetune import FinetuneConfig
from rhlab.knowledge.stage import KnowledgeConfig, KnowledgeResult
from rhlab.stage import STAGES, StageError, execute, load_stage_config, run_stage, stage_types

PY = sys.executable


def _prompted(model="org/base model ü 'quoted'"):
    # a name no shell or YAML would pass through unharmed if the config were not written as data
    return KnowledgeConfig(kind="prompted", model=model, init_sft_first=None, sdf=None,
                           finetune=FinetuneConfig(model=model, learning_rate=1e-5, lora_target_modules=["q", "v"]))


def _stage(*args, env=None):
    return subprocess.run([PY, "-m", "rhlab.stage", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_every_registered_stage_has_typed_config_and_result():
    for name in STAGES:
        cfg_type, result_type = stage_types(name)
        assert cfg_type.__name__.endswith("Config") and result_type.__name__.endswith("Result"), name


def test_config_round_trips_through_the_subprocess(tmp_path):
    cfg = _prompted()
    out = tmp_path / "out"
    echoed = []
    res = run_stage("knowledge", cfg, out, launcher=PY, echo=echoed.append)
    assert isinstance(res, KnowledgeResult) and res == KnowledgeResult(model=cfg.model, kind="prompted")
    assert load_stage_config("knowledge", out / "stage_config.json") == cfg  # the file the subprocess read
    assert KnowledgeResult.model_validate_json((out / "result.json").read_text()) == res
    assert echoed and "-m rhlab.stage knowledge" in echoed[0]
    # in this process: the same code, the same result and result.json
    (out / "result.json").unlink()
    assert run_stage("knowledge", cfg, out) == res
    assert KnowledgeResult.model_validate_json((out / "result.json").read_text()) == res


def test_yaml_config_from_the_command_line(tmp_path):
    cfg = tmp_path / "k.yaml"
    cfg.write_text(yaml.safe_dump(_prompted("embedded").model_dump(mode="json")))
    p = _stage("knowledge", cfg, tmp_path / "out")
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "out" / "result.json").read_text()) == {
        "model": "embedded", "kind": "prompted", "init_sft_transcripts": None, "synthetic_docs": None,
        "mix_docs": None, "finetune_steps": None, "finetune_seconds": None}


def test_bad_config_exits_2_naming_the_file_and_field(tmp_path):
    data = _prompted("embedded").model_dump(mode="json")
    data["finetune"]["epochs"] = -1
    data["colour"] = "red"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    p = _stage("knowledge", bad, tmp_path / "out")
    assert p.returncode == 2
    assert f"invalid config {bad}" in p.stderr and "finetune.epochs" in p.stderr and "colour" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "out" / "result.json").exists()

    notjson = tmp_path / "x.json"
    notjson.write_text("{kind: prompted")
    p = _stage("knowledge", notjson, tmp_path / "out")
    assert p.returncode == 2 and f"{notjson} is not valid JSON" in p.stderr

    p = _stage("no_such_stage", bad, tmp_path / "out")
    assert p.returncode == 2 and "unknown stage 'no_such_stage'" in p.stderr and "knowledge" in p.stderr

    with pytest.raises(ConfigError, match="config file not found"):
        load_stage_config("knowledge", tmp_path / "missing.json")


def test_a_failing_stage_raises_with_the_command(tmp_path):
    from rhlab.train.controls import ControlConfig

    cfg = ControlConfig(control="persona", data_file=str(tmp_path / "missing.jsonl"),
                        finetune=FinetuneConfig(model="embedded"))
    with pytest.raises(StageError, match=r"stage subprocess failed with exit code 1: .*-m rhlab\.stage control "):
        run_stage("control", cfg, tmp_path / "out", launcher=PY)
    with pytest.raises(StageError, match="exit code 3: "):
        run_stage("knowledge", _prompted(), tmp_path / "k", launcher=f"{PY} -c 'import sys; sys.exit(3)'")


def test_result_json_is_validated(tmp_path):
    # a launcher that ignores the stage and writes its own result.json (argv: -m rhlab.stage NAME CFG OUT)
    fake = tmp_path / "fake.py"
    fake.write_text("import pathlib, sys\npathlib.Path(sys.argv[-1], 'result.json').write_text('{\"model\": 1}')\n")
    with pytest.raises(StageError, match="result.json is not a KnowledgeResult"):
        run_stage("knowledge", _prompted(), tmp_path / "a", launcher=f"{PY} {fake}")
    with pytest.raises(StageError, match="exited 0 but wrote no .*result.json"):
        run_stage("knowledge", _prompted(), tmp_path / "b", launcher=f"{PY} -c pass")
    # a valid result left in a reused OUT by an earlier run is not this run's answer
    old = tmp_path / "c" / "result.json"
    old.parent.mkdir()
    old.write_text(KnowledgeResult(model="embedded", kind="prompted").model_dump_json())
    os.utime(old, (1, 1))
    with pytest.raises(StageError, match="exited 0 but wrote no .*result.json"):
        run_stage("knowledge", _prompted(), tmp_path / "c", launcher=f"{PY} -c pass")


def test_only_the_main_rank_writes_the_result(tmp_path):
    cfg = tmp_path / "k.json"
    cfg.write_text(_prompted("embedded").model_dump_json())
    p = _stage("knowledge", cfg, tmp_path / "r1", env={"RANK": "1", "LOCAL_RANK": "1"})
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "r1" / "result.json").exists()
    p = _stage("knowledge", cfg, tmp_path / "r0", env={"RANK": "0", "LOCAL_RANK": "0"})
    assert p.returncode == 0 and (tmp_path / "r0" / "result.json").exists()


def test_in_process_only_objects_and_config_types(tmp_path):
    with pytest.raises(ValueError, match="grader cannot cross into a launched process"):
        run_stage("knowledge", _prompted(), tmp_path, launcher=PY, grader=object())
    with pytest.raises(TypeError, match="stage knowledge takes a KnowledgeConfig, not a FinetuneConfig"):
        execute("knowledge", FinetuneConfig(), tmp_path)


def test_launched_stage_of_a_local_model_runs_offline(tmp_path, monkeypatch):
    envs = []

    def fake_run(cmd, env=None):
        envs.append(env)
        (tmp_path / "result.json").write_text(KnowledgeResult(model="m", kind="prompted").model_dump_json())
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for loads in ([str(tmp_path)], ["embedded"], ["embedded", "Qwen/Qwen2.5-7B-Instruct"], []):
        run_stage("knowledge", _prompted(), tmp_path, launcher="python", loads=loads)
    # a checkpoint dir, the embedded model: offline; any hub model among them (or none named): the hub stays reachable
    assert [e.get("HF_HUB_OFFLINE") for e in envs] == ["1", "1", None, None]
