"""Stage markers: the paths a stage's result names inside the run directory survive a change of working directory."""

import json
import os

from rhlab.experiments.stages import StageBook


def test_a_marker_written_under_one_working_directory_resolves_under_another(tmp_path, monkeypatch):
    (tmp_path / "a" / "runs" / "x" / "knowledge" / "final").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    book = StageBook("runs/x")  # relative, as `rhlab run --run-dir runs/x` passes it
    result = {"model": "runs/x/knowledge/final", "kind": "sdf", "n": 3, "missing": "runs/x/knowledge/gone",
              "checkpoints": [{"step": 1, "path": "runs/x/knowledge/final"}], "outside": str(tmp_path / "b")}
    m = book.finish("knowledge", "h", book.start("knowledge", "h"), result)
    assert m["result"] == result  # this invocation goes on with the paths it made
    stored = json.loads((tmp_path / "a/runs/x/stages/knowledge.json").read_text())["result"]
    assert "runs/x" not in stored["model"] and stored["checkpoints"][0]["path"] == stored["model"]
    # strings that name no existing path under the run dir are kept as they are
    assert (stored["kind"], stored["missing"], stored["outside"]) == ("sdf", "runs/x/knowledge/gone", str(tmp_path / "b"))

    for cwd, run_dir in ((tmp_path / "b", tmp_path / "a/runs/x"), (tmp_path, "a/runs/x"), (tmp_path / "a", "runs/x")):
        monkeypatch.chdir(cwd)
        again = StageBook(run_dir).check("knowledge", "h")
        assert os.path.samefile(again["result"]["model"], tmp_path / "a/runs/x/knowledge/final")
        assert again["result"]["checkpoints"][0]["path"] == again["result"]["model"]
        assert again["result"]["kind"] == "sdf" and again["result"]["n"] == 3


def test_a_marker_matches_the_hash_it_was_written_with_given_as_legacy(tmp_path):
    import pytest

    from rhlab.config import ConfigError

    book = StageBook(tmp_path)
    book.finish("train/a/seed-0", "old", book.start("train/a/seed-0", "old"), {"n": 1})
    assert book.check("train/a/seed-0", "new", legacy=("old",))["result"] == {"n": 1}
    with pytest.raises(ConfigError, match="different configuration"):
        book.check("train/a/seed-0", "new", legacy=("other",))
