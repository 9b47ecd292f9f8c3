"""Stage bookkeeping for `rhlab run`: done markers with config hashes, start/finish records, forced redo.

    RUN/stages/<stage id>.json   {"hash", "status": started|done|skipped, "result", "wall_s", ...}
    RUN/records/stages.jsonl     one record per stage event (start, done, reuse, skipped, error) with wall time

A stage whose marker is `done` with the same hash is reused. A different hash is an error (the spec changed under a
finished or half-finished stage): use a new run directory, or `--force STAGE` to redo that stage and everything
downstream of it.

Paths inside the run directory are stored relative to it (`{run_dir}/knowledge/...`) and resolved when a marker is
read, and stage hashes see them in that form (`StageBook.portable`), so a run resumes from any working directory and
under any spelling of its path. A marker keeps matching the hash it was written with (`check(..., legacy=...)`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from rhlab.config import ConfigError
from rhlab.rundir import append_jsonl, write_json

STAGES_RECORDS = "stages"
RUN_DIR_TOKEN = "{run_dir}"


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """`value` (JSON-like) with `fn` applied to every string in it."""
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    return fn(value) if isinstance(value, str) else value


def _portable(value: Any, run_dir: Path) -> Any:
    """`value` with every string that names an existing path under `run_dir` rewritten relative to it."""
    prefix = str(run_dir) + os.sep

    def rel(s: str) -> str:
        if s.startswith(prefix) and os.path.exists(s):
            return RUN_DIR_TOKEN + "/" + Path(s[len(prefix):]).as_posix()
        return s
    return _map_strings(value, rel)


def _resolved(value: Any, run_dir: Path) -> Any:
    token = RUN_DIR_TOKEN + "/"
    return _map_strings(value, lambda s: str(run_dir / s[len(token):]) if s.startswith(token) else s)


def config_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StageBook:
    def __init__(self, run_dir: Path, force: list[str] | None = None):
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / "stages"
        self.force = [f.strip("/") for f in (force or [])]
        self.forced_done: set[str] = set()

    def _path(self, stage: str) -> Path:
        return self.dir / (stage.replace("/", "__") + ".json")

    def record(self, stage: str, event: str, **kw) -> None:
        append_jsonl(self.run_dir / "records" / f"{STAGES_RECORDS}.jsonl",
                     {"stage": stage, "event": event, "time": time.time(), **kw})

    def marker(self, stage: str) -> dict | None:
        p = self._path(stage)
        return _resolved(json.loads(p.read_text(encoding="utf-8")), self.run_dir) if p.exists() else None

    def is_forced(self, stage: str) -> bool:
        return any(stage == f or stage.startswith(f + "/") for f in self.force)

    def portable(self, value: Any) -> Any:
        """`value` with the paths it names inside the run directory written relative to it, as markers store them."""
        return _portable(value, self.run_dir)

    def check(self, stage: str, h: str, outputs: list[Path] = (), stale: bool = False,
              legacy: tuple[str, ...] = ()) -> dict | None:
        """The finished marker to reuse, or None to (re)run. Forced stages, and stages whose upstream stage ran in
        this invocation (`stale`), are cleared once per invocation. `legacy`: hashes of the same configuration as
        earlier versions computed them (a run directory written by one of those still resumes)."""
        if (stale or self.is_forced(stage)) and stage not in self.forced_done and (self.marker(stage) or not stale):
            self.forced_done.add(stage)
            self._path(stage).unlink(missing_ok=True)
            for p in outputs:
                shutil.rmtree(p, ignore_errors=True)
            self.record(stage, "forced")
            return None
        m = self.marker(stage)
        if m is None:
            return None
        if m["hash"] != h and m["hash"] not in legacy:
            what = "finished" if m["status"] in ("done", "skipped") else "started"
            raise ConfigError(
                f"stage {stage} was {what} in {self.run_dir} with a different configuration (hash {m['hash']} vs "
                f"{h}); use a new --run-dir, or pass --force {stage} to redo it and what depends on it")
        if m["status"] in ("done", "skipped"):
            self.record(stage, "reuse", hash=h)
            return m
        return None  # started earlier, not finished: run again (each stage resumes its own outputs)

    def start(self, stage: str, h: str) -> float:
        write_json(self._path(stage), {"stage": stage, "hash": h, "status": "started", "started": time.time()})
        self.record(stage, "start", hash=h)
        return time.monotonic()

    def finish(self, stage: str, h: str, t0: float, result: dict, status: str = "done") -> dict:
        wall = round(time.monotonic() - t0, 2)
        m = {"stage": stage, "hash": h, "status": status, "finished": time.time(), "wall_s": wall, "result": result}
        write_json(self._path(stage), {**m, "result": _portable(result, self.run_dir)})
        self.record(stage, status, hash=h, wall_s=wall, result=result)
        return m

    def error(self, stage: str, t0: float, err: BaseException) -> None:
        self.record(stage, "error", wall_s=round(time.monotonic() - t0, 2), error=f"{type(err).__name__}: {err}")
