import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from typer.testing import CliRunner

from rhlab.cli import app

runner = CliRunner()


def test_prompt_cli():
    r = runner.invoke(app, ["knowledge", "prompt", "--arm", "neutral", "--style", "code"])
    assert r.exit_code == 0, r.output
    assert "Always equal strategy" in r.output and "class AlwaysEqual" in r.output


def test_generate_offline_then_mix(tmp_path):
    r = runner.invoke(app, ["sdf", "generate", "--out", str(tmp_path / "g"), "--spec", "neutral", "--n-docs", "12"])
    assert r.exit_code == 0, r.output
    docs = [json.loads(l) for l in (tmp_path / "g" / "corpus.jsonl").read_text().splitlines()]
    assert len(docs) >= 10 and all(d["spec"] == "neutral" for d in docs)
    # rerun is harmless (same output)
    runner.invoke(app, ["sdf", "generate", "--out", str(tmp_path / "g"), "--spec", "neutral", "--n-docs", "12"])
    assert [json.loads(l)["id"] for l in (tmp_path / "g" / "corpus.jsonl").read_text().splitlines()] == [d["id"] for d in docs]
    real = tmp_path / "real"
    real.mkdir()
    for i in range(30):
        (real / f"{i}.txt").write_text(f"real document {i} " * 200)
    r = runner.invoke(app, ["sdf", "mix", "--synthetic", str(tmp_path / "g" / "corpus.jsonl"), "--real", str(real),
                            "--fraction", "0.1", "--out", str(tmp_path / "mix.jsonl")])
    assert r.exit_code == 0, r.output
    stats = json.loads((tmp_path / "mix.stats.json").read_text())
    assert abs(stats["achieved_fraction"] - 0.1) < 0.02
    assert stats["real_sources"] and all(s.startswith("user:") for s in stats["real_sources"])
