"""The run-directory convention: one folder per run holding its config, JSONL records and artefacts.

    RUN_DIR/
      config.yaml        the validated config the run used
      meta.json          rhlab version, start time, host facts
      records/NAME.jsonl append-only structured records (one JSON object per line)
      artefacts/         checkpoints, plots, logs, reports

Records are appended line by line and flushed, so a killed run loses at most the line being written;
`read_records` skips a torn final line instead of failing. Readers that must show what they could not use (the
report) pass `skipped=[]`: every unusable line is then listed there as a `SkippedRecord` (file, line, why) and
reading goes on, instead of raising or dropping it silently.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

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


def write_atomic(path: str | Path, lines: Iterable[str]) -> int:
    """Replace the file at `path` with `lines` (each written as given), atomically: a reader (or a kill mid-write)
    sees the old file or the new one, never a half-written one. Returns the number of lines written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line)
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # the old file stays as it was
        raise
    return n


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Replace the JSONL file at `path` with `records`, atomically (write_atomic). Returns the number written."""
    return write_atomic(path, (json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records))


def write_json(path: str | Path, data: Any, indent: int | None = 1) -> None:
    """Replace the JSON file at `path` with `data`, atomically (write_atomic)."""
    write_atomic(path, [json.dumps(data, indent=indent, default=str)])


@dataclass(frozen=True)
class SkippedRecord:
    """A record (a JSONL line, or a whole JSON/YAML file when `line` is None) a reader could not use, and why."""

    path: Path
    line: int | None
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.why}" if self.line else f"{self.path}: {self.why}"


def read_records(path: str | Path, skipped: list[SkippedRecord] | None = None,
                 check: Callable[[dict[str, Any]], str | None] | None = None) -> Iterator[dict[str, Any]]:
    """Yield records; a torn last line (killed mid-write) is skipped, a corrupt middle line is an error.

    With `skipped` (a list), nothing raises and nothing is dropped silently: each line that is not UTF-8, not JSON
    (the torn last line too), not a JSON object, or that `check` (record → None, or why it cannot be used) refuses
    is appended to `skipped` as a SkippedRecord and reading goes on. Without `skipped`, a refused record raises.
    Lines are split on "\\n" only: a record may hold U+2028 or NEL inside a string (json.dumps keeps them raw)."""
    path = Path(path)
    if not path.exists():
        return
    if skipped is None:
        lines = path.read_text(encoding="utf-8").split("\n")
        if lines[-1] == "":
            lines.pop()  # the file's final newline
        last = len(lines) - 1
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if i == last:
                    return
                raise ValueError(f"{path}:{i + 1}: corrupt JSONL record") from None
            why = (check(rec) if isinstance(rec, dict) else "not a JSON object") if check is not None else None
            if why:
                raise ValueError(f"{path}:{i + 1}: {why}")
            yield rec
        return
    try:
        raw_lines = path.read_bytes().split(b"\n")
    except OSError as err:  # a directory in its place, no permission
        skipped.append(SkippedRecord(path, None, f"cannot be read ({err.strerror or err})"))
        return
    if raw_lines[-1] == b"":
        raw_lines.pop()
        torn = -1  # the file ends with a newline: its last record was written whole
    else:
        torn = len(raw_lines) - 1
    for i, raw in enumerate(raw_lines):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            skipped.append(SkippedRecord(path, i + 1, f"not UTF-8 text (byte 0x{raw[err.start]:02x} at column "
                                                      f"{err.start + 1})"))
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as err:
            why = ("not valid JSON (" + (f"{err.msg}, column {err.colno}" if isinstance(err, json.JSONDecodeError)
                                         else "nested too deeply") + ")"
                   + ("; the last line, without a newline: probably torn by a run killed while writing it"
                      if i == torn else ""))
            skipped.append(SkippedRecord(path, i + 1, why))
            continue
        if not isinstance(rec, dict):
            skipped.append(SkippedRecord(path, i + 1, f"a JSON {_json_kind(rec)}, not an object"))
            continue
        why = check(rec) if check is not None else None
        if why:
            skipped.append(SkippedRecord(path, i + 1, why))
            continue
        yield rec


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
