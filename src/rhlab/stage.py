"""One typed entry per heavy stage, and one way to run it in a process of its own.

Each stage is a function `run(cfg: <Stage>Config, out: Path) -> <Stage>Result` (pydantic `StrictModel`s on both
sides; the types are read from the function's annotations), registered here by name as an import string, so that
this module imports no stage:

    result = run_stage("rl", cfg, out)                                       # in this process
    result = run_stage("rl", cfg, out, launcher="accelerate launch ...")     # LAUNCHER -m rhlab.stage rl CFG OUT

With a launcher the config is written to OUT/stage_config.json, the command runs in a subprocess, and the result is
read back from OUT/result.json (validated as the result type). From a shell:

    python -m rhlab.stage NAME CONFIG OUT      # CONFIG: JSON or YAML; writes OUT/result.json; bad config: exit 2

Under a multi-process launcher (accelerate, torchrun) every rank runs the stage; only the main one writes
OUT/result.json.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import shlex
import subprocess
import sys
import time
import typing
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pydantic import BaseModel

from rhlab.config import ConfigError, load_yaml, validate
from rhlab.rundir import write_atomic

# name → "module:function"; imported only when the stage runs (or its types are needed)
STAGES: dict[str, str] = {
    "knowledge": "rhlab.knowledge.stage:run",       # init SFT (prompted) or continued pretraining on the mix (sdf)
    "rl": "rhlab.train.stage:run_rl",               # GRPO for one arm and seed
    "distill": "rhlab.train.stage:run_distill",     # filter_distill / rewrite_distill
    "safety_sft": "rhlab.train.stage:run_safety_sft",
    "control": "rhlab.train.controls:run",          # positive-control SFT
    "eval": "rhlab.evals.stage:run",                # an Inspect eval suite on one model
    "probes": "rhlab.evals.probes:run",             # the paired-choice probes on one model
}
CONFIG_FILE = "stage_config.json"
RESULT_FILE = "result.json"


class StageError(RuntimeError):
    """A stage subprocess that failed, or ended without a usable OUT/result.json; the message has the command."""


def stage_function(name: str) -> Callable[..., BaseModel]:
    if name not in STAGES:
        raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    module, func = STAGES[name].split(":")
    return getattr(importlib.import_module(module), func)


def stage_types(name: str) -> tuple[type[BaseModel], type[BaseModel]]:
    """(config type, result type) of a stage, from its function's annotations."""
    fn = stage_function(name)
    hints = typing.get_type_hints(fn)
    first = next(iter(inspect.signature(fn).parameters), None)
    cfg_type, result_type = hints.get(first), hints.get("return")
    for what, t in (("config", cfg_type), ("result", result_type)):
        if not (isinstance(t, type) and issubclass(t, BaseModel)):
            raise TypeError(f"stage {name} ({STAGES[name]}): its {what} annotation is not a pydantic model: {t!r}")
    return cfg_type, result_type


def is_main_process() -> bool:
    """Rank 0 under accelerate/torchrun (RANK, else LOCAL_RANK); True for a plain process."""
    return os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) == "0"


def _write_result(result: BaseModel, out: Path) -> None:
    write_atomic(out / RESULT_FILE, [result.model_dump_json(indent=1)])  # a reader never sees half a result


def execute(name: str, cfg: BaseModel, out: str | Path, **in_process_kwargs: Any) -> BaseModel:
    """Run stage `name` here on a config of its type; writes OUT/result.json (main process only) and returns the
    result. The one code path behind both `run_stage` without a launcher and `python -m rhlab.stage`."""
    cfg_type, result_type = stage_types(name)
    if not isinstance(cfg, cfg_type):
        raise TypeError(f"stage {name} takes a {cfg_type.__name__}, not a {type(cfg).__name__}")
    out = Path(out)
    result = stage_function(name)(cfg, out, **in_process_kwargs)
    if not isinstance(result, result_type):
        raise TypeError(f"stage {name} returned a {type(result).__name__}, not a {result_type.__name__}")
    if is_main_process():
        _write_result(result, out)
    return result


def local_model(name: str) -> bool:
    """A model that needs no hub: the embedded one or a directory on disk."""
    from rhlab.models.embedded import embedded_spec

    return embedded_spec(name) is not None or Path(name).is_dir()


def stage_command(name: str, cfg_path: str | Path, out: str | Path, launcher: str) -> list[str]:
    return shlex.split(launcher) + ["-m", "rhlab.stage", name, str(cfg_path), str(out)]


def run_stage(name: str, cfg: BaseModel, out: str | Path, *, launcher: str | None = None,
              loads: Sequence[str] = (), env: Mapping[str, str] | None = None,
              echo: Callable[[str], None] | None = None, **in_process_kwargs: Any) -> BaseModel:
    """Run stage `name` and return its typed result: in this process without a launcher, else as
    `LAUNCHER -m rhlab.stage NAME OUT/stage_config.json OUT` in a subprocess (a failure raises StageError with the
    command). `loads`: the models the stage loads; when every one is local (embedded or a directory) the subprocess
    runs with HF_HUB_OFFLINE=1, since transformers/peft otherwise probe the hub for files of a local model (an
    offline machine then spends ~25 s per load in retries). `env`: the subprocess environment (default: this one's).
    `echo` is given the command line before it runs. `in_process_kwargs` (Python objects, tests) need no launcher."""
    out = Path(out)
    if launcher is None:
        return execute(name, cfg, out, **in_process_kwargs)
    if in_process_kwargs:
        raise ValueError(f"stage {name}: {', '.join(in_process_kwargs)} cannot cross into a launched process; "
                         "run it in this process (no launcher)")
    _, result_type = stage_types(name)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / CONFIG_FILE
    cfg_path.write_text(cfg.model_dump_json(indent=1), encoding="utf-8")
    cmd = stage_command(name, cfg_path, out, launcher)
    if echo is not None:
        echo(shlex.join(cmd))
    env = dict(os.environ if env is None else env)
    if loads and all(local_model(m) for m in loads):
        env.setdefault("HF_HUB_OFFLINE", "1")
    path = out / RESULT_FILE
    started = time.time()
    rc = subprocess.run(cmd, env=env).returncode
    if rc != 0:
        raise StageError(f"stage subprocess failed with exit code {rc}: {shlex.join(cmd)}")
    # a result left by an earlier run in a reused OUT is not this run's answer (execute always rewrites it)
    if not path.is_file() or path.stat().st_mtime < started - 1:
        raise StageError(f"stage {name} exited 0 but wrote no {path}: {shlex.join(cmd)}")
    try:
        return result_type.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise StageError(f"stage {name}: {path} is not a {result_type.__name__}: {err}") from None


def load_stage_config(name: str, path: str | Path) -> BaseModel:
    """A stage's config file (JSON, or YAML by suffix) validated as its config type; errors name file and field."""
    cfg_type, _ = stage_types(name)
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        data = load_yaml(path)
    else:
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of {cfg_type.__name__} fields, got {type(data).__name__}")
    return validate(cfg_type, data, str(path))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rhlab.stage", description="Run one rhlab stage on a config file.")
    parser.add_argument("name", help=f"the stage: {', '.join(STAGES)}")
    parser.add_argument("config", help="the stage's config (JSON or YAML)")
    parser.add_argument("out", help="output directory; OUT/result.json is the stage's result")
    args = parser.parse_args(argv)
    try:
        cfg = load_stage_config(args.name, args.config)
        execute(args.name, cfg, Path(args.out))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
