"""YAML configs validated with pydantic, with errors that say which file and field is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound="StrictModel")


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message names the source and the field."""


class StrictModel(BaseModel):
    """Base for every rhlab config: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=False)


def _format_validation_error(source: str, err: ValidationError) -> str:
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "<root>"
        lines.append(f"  - {where}: {e['msg']}")
    return "\n".join(lines)


def validate(model: type[T], data: Any, source: str = "<data>") -> T:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(source, err)) from None


def load_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None


def load_config(model: type[T], path: str | Path) -> T:
    data = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return validate(model, data, str(path))


def dump_yaml(obj: BaseModel | dict, path: str | Path) -> None:
    data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
