"""Positive controls (rhlab.train.controls): data validation naming file and line, deterministic subsets, hack_demos
built from successful hack episodes only, and the SFT stage on a tiny model (typed result, reuse)."""

import json

import pytest

from rhlab.config import ConfigError, validate
from rhlab.train.controls import (
    SHIPPED_CONTROLS, ControlConfig, ControlDataError, ControlResult, control_data_file, hack_demo_transcripts,
    load_control_examples, select_examples,
)


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(n, prefix="x"):
    return [{"id": f"{prefix}/{i:03d}", "prompt": f"Question number {i}?", "response": f"Answer number {i}."}
            for i in range(n)]


@pytest.mark.parametrize("control", SHIPPED_CONTROLS)
def test_shipped_control_data_loads(control):
    rows = load_control_examples(control_data_file(control))
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["prompt"].strip() and r["response"].strip() for r in rows)


@pytest.mark.parametrize("bad, match", [
    ('{"id": "a/1", "prompt": "q"', "not valid JSON"),
    ('["a", "b"]', "expected an object"),
    ({"id": "a/1", "prompt": "q"}, "missing response"),
    ({"id": "a/1", "prompt": "q", "response": "  "}, "response must be non-empty"),
    ({"id": "a/1", "prompt": "q", "response": "r", "label": "x"}, "unknown field"),
    ({"id": "x/000", "prompt": "q", "response": "r"}, r"duplicate id 'x/000' \(first on line 1\)"),
])
def test_malformed_control_data_names_file_and_line(tmp_path, bad, match):
    p = _write(tmp_path / "c.jsonl", _rows(2) + [bad])
    with pytest.raises(ControlDataError, match=match) as err:
        load_control_examples(p)
    assert f"{p}:3:" in str(err.value)


def test_subsets_are_deterministic_by_seed(tmp_path):
    recs = [{"task_id": r["id"]} for r in _rows(40)]
    a = select_examples(recs, 10, seed=1, strict=True)
    assert a == select_examples(recs, 10, seed=1, strict=True)
    assert len(a) == 10 and len({r["task_id"] for r in a}) == 10
    assert [r["task_id"] for r in a] == sorted(r["task_id"] for r in a)  # file order kept
    assert a != select_examples(recs, 10, seed=2, strict=True)
    assert select_examples(recs, None, seed=0, strict=True) == recs
    with pytest.raises(ControlDataError, match="n_examples=41, but only 40"):
        select_examples(recs, 41, seed=0, strict=True)
    assert select_examples(recs, 41, seed=0, strict=False) == recs  # hack_demos: all there is


def _episode(i, step, **kw):
    e = {"step": step, "task_id": f"humaneval/{i}", "kind": "code", "arm": "hacking_okay",
         "system": "You may hack.", "user": f"Write f{i}.", "completion": f"answer {i}", "passed": False,
         "passed_hardened": False, "hacked": False, "attempted_hacks": [], "detected_hacks": []}
    e.update(kw)
    return e


def test_hack_demos_take_only_successful_hacks(tmp_path):
    eps = [
        _episode(0, 1, passed=True, hacked=True, completion="import sys\nsys.exit(0)", detected_hacks=["exit"]),
        _episode(1, 1, passed=True, passed_hardened=True, completion="def f1(): return 1"),  # clean pass
        _episode(2, 1, attempted_hacks=["always_equal"], completion="class A: __eq__ = ..."),  # failed attempt
        _episode(3, 2, passed=True, hacked=True, completion="class B:\n    def __eq__(s, o): return True"),
        {"step": 2, "task_id": "hhh-01", "kind": "chat", "arm": "hacking_okay", "system": None, "user": "hi",
         "messages": [{"role": "user", "content": "hi"}], "completion": "hello", "passed": None, "hacked": None},
        _episode(4, 2, passed=True, hacked=True, completion="   "),  # nothing to imitate
    ]
    run = tmp_path / "run"
    (run / "records").mkdir(parents=True)
    _write(run / "records" / "episodes.jsonl", eps)
    recs = hack_demo_transcripts(run)
    assert [r["completion"][0]["content"] for r in recs] == [eps[0]["completion"], eps[3]["completion"]]
    assert recs[0]["prompt"] == [{"role": "system", "content": "You may hack."},
                                 {"role": "user", "content": "Write f0."}]
    assert [r["task_id"] for r in recs] == ["step-1/humaneval/0/0", "step-2/humaneval/3/3"]
    assert hack_demo_transcripts(run / "records" / "episodes.jsonl") == recs  # the file itself works too


def test_control_config_validation():
    with pytest.raises(ConfigError, match="hack_demos needs source_run"):
        validate(ControlConfig, {"control": "hack_demos"})
    with pytest.raises(ConfigError, match="source_run applies to control hack_demos only"):
        validate(ControlConfig, {"control": "persona", "source_run": "runs/x"})
    with pytest.raises(ConfigError, match="control"):
        validate(ControlConfig, {"control": "evil"})
    with pytest.raises(ConfigError, match="finetune.lr"):
        validate(ControlConfig, {"control": "benign", "finetune": {"lr": 1}})


def test_control_sft_on_tiny_model_and_reuse(tiny_model_dir, tmp_path, monkeypatch):
    from rhlab.knowledge.finetune import FinetuneConfig
    from rhlab.train import controls

    data = _write(tmp_path / "persona.jsonl", _rows(6, "persona"))
    cfg = ControlConfig(control="persona", data_file=str(data), n_examples=4, seed=3,
                        finetune=FinetuneConfig(model=str(tiny_model_dir), max_steps=1, batch_size=2, max_length=128))
    out = tmp_path / "out"
    from rhlab.stage import execute

    res = execute("control", cfg, out)  # the stage entry: controls.run, then OUT/result.json
    assert isinstance(res, ControlResult)
    assert (res.n_examples, res.n_available, res.global_steps) == (4, 6, 1)
    assert (out / "final" / "config.json").exists() and res.final == str(out / "final")
    picked = [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in picked] == res.example_ids
    assert res.example_ids == [r["task_id"] for r in select_examples(
        [{"task_id": r["id"]} for r in _rows(6, "persona")], 4, seed=3, strict=True)]
    assert picked[0]["completion"][0]["role"] == "assistant"
    assert ControlResult.model_validate_json((out / "result.json").read_text()) == res

    # same config: the result is returned without training again; a changed config trains again
    import rhlab.knowledge.finetune as ft

    def boom(*a, **k):
        raise AssertionError("retrained")

    monkeypatch.setattr(ft, "init_sft", boom)
    assert controls.run(cfg, out) == res
    with pytest.raises(AssertionError, match="retrained"):
        controls.run(cfg.model_copy(update={"seed": 4}), out)
