"""The run-directory convention: one folder per run holding its config, JSONL records and artefacts.

    RUN_DIR/
      config.yaml        the validated config the run used
      meta.json          rhlab version, start time, host facts
      records/NAME.jsonl append-only structured records (one JSON object per line)
      artefacts/         checkpoints, plots, logs, reports

Records are appended line by line and flushed, so a killed run loses at most the line being written;
`read_records` skips a torn final line instead of failing.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel

from rhlab import __version__
from rhlab.config import dump_yaml


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path, config: BaseModel | dict | None = None, exist_ok: bool = True) -> "RunDir":
        run = cls(path)
        run.path.mkdir(parents=True, exist_ok=exist_ok)
        (run.path / "records").mkdir(exist_ok=True)
        (run.path / "artefacts").mkdir(exist_ok=True)
        if config is not None:
            dump_yaml(config, run.path / "config.yaml")
        meta_path = run.path / "meta.json"
        if not meta_path.exists():
            meta = {
                "rhlab_version": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
                "python": platform.python_version(),
                "host": platform.node(),
                "cpus": os.cpu_count(),
            }
            meta_path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return run

    @property
    def records_dir(self) -> Path:
        return self.path / "records"

    @property
    def artefacts_dir(self) -> Path:
        return self.path / "artefacts"

    def records_path(self, name: str) -> Path:
        return self.records_dir / f"{name}.jsonl"

    def append(self, name: str, record: dict[str, Any]) -> None:
        append_jsonl(self.records_path(name), record)

    def records(self, name: str) -> list[dict[str, Any]]:
        return list(read_records(self.records_path(name)))


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, default=str)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield records; a torn last line (killed mid-write) is skipped, a corrupt middle line is an error."""
    path = Path(path)
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                return
            raise ValueError(f"{path}:{i + 1}: corrupt JSONL record") from None
