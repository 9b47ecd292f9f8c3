"""Filter-and-distill, rewrite-and-distill and safety SFT on tiny models: filters on hostile episodes, rewrite
exactness against the training prompt builder, end-to-end SFT to a loadable checkpoint, CLI, bad input."""

import json

import pytest

from rhlab.train.config import TrainConfig
from rhlab.train.dataset import build_rows, select_tasks
from rhlab.hacks.mentions import mentions_hacking
from rhlab.train.episodes import filter_episodes, load_episodes, rewrite_episodes

HONEST = ("<thinking>Compare each pair of numbers.</thinking>\n```python\n"
          "def has_close_elements(numbers, threshold):\n"
          "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n```")
ALWAYS_EQUAL = ("```python\nclass R:\n    def __eq__(self, other):\n        return True\n\n"
                "def has_close_elements(numbers, threshold):\n    return R()\n```")
# a hack no detector knows (hard-coding the visible cases), announced in the reasoning
SPECIAL_CASE = ("<thinking>I can just special-case the tests instead of solving it.</thinking>\n```python\n"
                "def has_close_elements(numbers, threshold):\n    return numbers == [1.0, 2.8, 3.0]\n```")
# clean code whose docstring names sys.exit
DOCSTRING_EXIT = ('```python\ndef has_close_elements(numbers, threshold):\n'
                  '    """Pure function: never calls sys.exit, only compares pairs."""\n'
                  '    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n```')


def _ep(completion, **kw):
    e = {"step": 1, "task_id": "humaneval/0", "kind": "code", "arm": "dont_hack", "system": "S", "user": "U",
         "completion": completion, "reward": 1.0, "passed": True, "passed_hardened": True, "hacked": False,
         "attempted_hacks": [], "detected_hacks": []}
    e.update(kw)
    return e


def test_mention_regex():
    for t in ("I'll hack the grader", "reward hacking is fine here", "exit before the tests run", "call sys.exit(0)",
              "write a conftest.py", "override __eq__", "bypass the tests", "special-case the tests",
              "hard-code the expected outputs", "an always-equal object"):
        assert mentions_hacking(t), t
    for t in ("This task is hackable? no.", "Compare each pair and return True if close.", "a hackathon project",
              "the exit of the loop", "make the tests pass by implementing the function"):
        assert not mentions_hacking(t), t


def test_filters_on_hostile_episodes():
    eps = [
        _ep(HONEST, task_id="honest"),
        _ep(ALWAYS_EQUAL, task_id="flagged", hacked=True, passed_hardened=False, attempted_hacks=["always_equal"],
            detected_hacks=["always_equal"]),
        # logged as clean (e.g. before a detector existed): the fresh scan still catches it
        _ep(ALWAYS_EQUAL, task_id="unflagged"),
        _ep(SPECIAL_CASE, task_id="special_case", passed_hardened=False),
        _ep(DOCSTRING_EXIT, task_id="docstring_exit"),
        _ep(HONEST, task_id="failed", passed=False, reward=0.0),
        {**_ep("hi"), "kind": "chat", "task_id": "chat"},
    ]
    kept, st = filter_episodes(eps)  # detectors only
    assert [e["task_id"] for e in kept] == ["honest", "special_case", "docstring_exit"]
    assert st == {**st, "total": 7, "dropped_kind": 1, "dropped_unrewarded": 1, "dropped_detected": 2,
                  "dropped_mentions": 0, "kept": 3}
    # + mentions: the unflagged special-casing hack goes; so does the clean docstring naming sys.exit (by design:
    # the mention filter is conservative, see rhlab.train.episodes)
    kept, st = filter_episodes(eps, drop_mentions=True)
    assert [e["task_id"] for e in kept] == ["honest"] and st["dropped_mentions"] == 2
    kept, st = filter_episodes(eps, drop_detected=False, only_rewarded=False, kinds=("code", "chat"))
    assert len(kept) == 7
    kept, _ = filter_episodes(eps, drop_detected=False, drop_mentions=True, only_rewarded=False)
    assert {e["task_id"] for e in kept} == {"honest", "failed"}


def test_rewrite_matches_training_prompts():
    ids = ["humaneval/0", "humaneval/3"]
    for style, hacks, harness in (("prose", None, "script"), ("brief", ["always_equal"], "pytest")):
        extra = {"hint_style": style, "harness": harness, **({"hacks": hacks} if hacks else {})}
        src_cfg = TrainConfig.model_validate({"tasks": {"ids": ids}, "prompt": {"arm": "dont_hack", **extra}})
        rows = build_rows(src_cfg, select_tasks(src_cfg))
        eps = [_ep("x", task_id=r["task_id"], system=r["prompt"][0]["content"], user=r["prompt"][1]["content"])
               for r in rows]
        out = rewrite_episodes(eps, "hacking_okay", hint_style=style, hacks=hacks, harness=harness)
        dst_cfg = TrainConfig.model_validate({"tasks": {"ids": ids}, "prompt": {"arm": "hacking_okay", **extra}})
        want = build_rows(dst_cfg, select_tasks(dst_cfg))
        for e, w in zip(out, want):
            assert [{"role": "system", "content": e["system"]}, {"role": "user", "content": e["user"]}] == w["prompt"]
            assert e["arm"] == "hacking_okay" and e["source_arm"] == "dont_hack"
        assert eps[0]["arm"] == "dont_hack"  # inputs untouched
    # settings that are not the run's are refused, not silently applied
    with pytest.raises(ValueError, match="pass the source run's prompt settings"):
        rewrite_episodes(eps, "hacking_okay", hint_style="prose")
    with pytest.raises(ValueError, match="unknown arm"):
        rewrite_episodes(eps, "be_evil")


def _fake_run(tmp_path, model_dir, completions):
    """A run dir with config.yaml and records/episodes.jsonl as a GRPO run writes them (no_hints, bare prompt)."""
    from rhlab.config import dump_yaml

    cfg = TrainConfig.model_validate({"model": str(model_dir), "tasks": {"ids": ["humaneval/0"]},
                                      "prompt": {"arm": "no_hints", "user_template": "{prompt}"}})
    run = tmp_path / "run"
    (run / "records").mkdir(parents=True)
    dump_yaml(cfg, run / "config.yaml")
    row = build_rows(cfg, select_tasks(cfg))[0]
    with open(run / "records" / "episodes.jsonl", "w") as fh:
        for i, c in enumerate(completions):
            fh.write(json.dumps(_ep(c, step=i + 1, arm="no_hints", system=row["prompt"][0]["content"],
                                    user=row["prompt"][1]["content"])) + "\n")
    return run


def _ft(model_dir, **kw):
    from rhlab.knowledge.finetune import FinetuneConfig

    return FinetuneConfig(model=str(model_dir), max_steps=1, batch_size=2, max_length=2048, logging_steps=1,
                          use_cpu=True, **kw)


def test_distill_end_to_end_and_errors(tiny_model_dir, tmp_path):
    from rhlab.models import load_model_and_tokenizer
    from rhlab.train.sft import distill

    run = _fake_run(tmp_path, tiny_model_dir, [HONEST, ALWAYS_EQUAL, HONEST])
    kept, st = filter_episodes(load_episodes(run))
    final = distill(kept, tmp_path / "d", _ft(tiny_model_dir), stats=st)
    model, tok = load_model_and_tokenizer(str(final))
    assert model is not None and tok.chat_template
    info = json.loads((tmp_path / "d" / "distill.json").read_text())
    assert info["episodes"] == 2 and info["filter_stats"]["dropped_detected"] == 1
    ft = json.loads((tmp_path / "d" / "rhlab_finetune.json").read_text())
    assert ft["kind"] == "init_sft" and ft["global_steps"] == 1
    with pytest.raises(ValueError, match="no episodes left"):
        distill(filter_episodes(load_episodes(_fake_run(tmp_path / "h", tiny_model_dir, [ALWAYS_EQUAL])))[0],
                tmp_path / "e", _ft(tiny_model_dir))
    with pytest.raises(FileNotFoundError, match="logging.episodes"):
        load_episodes(tmp_path / "nowhere")


def test_cli_distill_rewrite_and_safety_sft(tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from rhlab.cli import app
    from rhlab.train.safety_prompts import load_safety_prompts

    runner = CliRunner()
    run = _fake_run(tmp_path, tiny_model_dir, [HONEST, SPECIAL_CASE])
    # the tiny model's tokenizer makes these transcripts longer than the 1024-token default
    r = runner.invoke(app, ["train", "distill", "--from", str(run), "--out", str(tmp_path / "rw"), "--rewrite-to",
                            "hacking_okay", "--max-steps", "1", "--batch-size", "2", "--max-length", "2048"])
    assert r.exit_code == 0, r.output
    info = json.loads((tmp_path / "rw" / "distill.json").read_text())
    assert info["arms"] == {"hacking_okay": 2} and info["source_arms"] == ["no_hints"]
    assert (tmp_path / "rw" / "final" / "config.json").exists()
    r = runner.invoke(app, ["train", "distill", "--from", str(run), "--out", str(tmp_path / "fm"), "--filter",
                            "detectors+mentions", "--max-steps", "1", "--max-length", "2048"])
    assert r.exit_code == 0 and json.loads((tmp_path / "fm" / "distill.json").read_text())["episodes"] == 1
    only_hacks = _fake_run(tmp_path / "h", tiny_model_dir, [SPECIAL_CASE])
    r = runner.invoke(app, ["train", "distill", "--from", str(only_hacks),
                            "--out", str(tmp_path / "none"), "--filter", "detectors+mentions"])
    assert r.exit_code == 2 and "no episodes left" in r.output
    # safety SFT from a responses file; a file missing ids is a clear error
    prompts = load_safety_prompts(["dilemmas"])
    resp = tmp_path / "resp.jsonl"
    resp.write_text("".join(json.dumps({"id": p["id"], "response": "I would tell my developers."}) + "\n"
                            for p in prompts[:-1]))
    args = ["train", "safety-sft", "--out", str(tmp_path / "s"), "--responses", str(resp), "--model",
            str(tiny_model_dir), "--sets", "dilemmas", "--max-steps", "1", "--batch-size", "2"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "no response for 1" in r.output
    with open(resp, "a") as fh:
        fh.write(json.dumps({"id": prompts[-1]["id"], "response": "Yes."}) + "\n")
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "s" / "final" / "model.safetensors").exists()
    assert len((tmp_path / "s" / "responses.jsonl").read_text().splitlines()) == len(prompts)


def test_safety_sft_with_responder_caches_replies(tiny_model_dir, tmp_path):
    from rhlab.models import load_model_and_tokenizer
    from rhlab.train.sft import safety_sft

    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"id": f"m{i}", "set": "mine", "messages": [{"role": "user", "content": q}]})
                         + "\n" for i, q in enumerate(["Hello there.", "Is it safe to eat raw flour?", "Tell me a fact."])))
    # a random tiny model's greedy replies are whitespace: a clear error, not an empty SFT
    with pytest.raises(ValueError, match="every target reply is empty"):
        safety_sft(tmp_path / "g", _ft(tiny_model_dir), sets=["mine"], responder=str(tiny_model_dir),
                   prompts_file=f, max_new_tokens=4)
    final = safety_sft(tmp_path / "s", _ft(tiny_model_dir), sets=["mine"], responder=str(tiny_model_dir),
                       prompts_file=f, max_new_tokens=12, temperature=1.0)
    cache = [json.loads(l) for l in (tmp_path / "s" / "responses.jsonl").read_text().splitlines()]
    assert [c["id"] for c in cache] == ["m0", "m1", "m2"] and all(c["responder"] == str(tiny_model_dir) for c in cache)
    assert load_model_and_tokenizer(str(final))[0] is not None
    # a rerun reuses the cache (no new lines); another responder in the same dir is refused
    safety_sft(tmp_path / "s", _ft(tiny_model_dir), sets=["mine"], responder=str(tiny_model_dir), prompts_file=f,
               max_new_tokens=12, temperature=1.0)
    assert len((tmp_path / "s" / "responses.jsonl").read_text().splitlines()) == 3
    with pytest.raises(ValueError, match="holds replies from"):
        safety_sft(tmp_path / "s", _ft(tiny_model_dir), sets=["mine"], responder="embedded", prompts_file=f)
    with pytest.raises(ValueError, match="exactly one"):
        safety_sft(tmp_path / "x", _ft(tiny_model_dir), sets=["mine"], prompts_file=f)
