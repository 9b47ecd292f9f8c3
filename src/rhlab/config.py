"""YAML configs validated with pydantic, with errors that say which file and field is wrong.

Loading is strict where YAML and pydantic are lax by default: a key given twice in one mapping is an error (YAML
would keep the last silently), `.nan`/`.inf` are refused (every number in a config is a setting that must be
finite), a file that is not UTF-8 is reported with the byte offset, an empty file is an error unless the caller
asks for "all defaults", and `true`/`false` are not accepted where a number is expected (pydantic reads them as
1/0).
"""

from __future__ import annotations

import collections.abc as abc
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, TypeVar

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

T = TypeVar("T", bound="StrictModel")
M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message names the source and the field."""


# -- booleans are not numbers ---------------------------------------------------------------------------------

_NUMBER_TYPES = (int, float)


def _members(ann: Any) -> list[Any]:
    """The alternatives of an annotation: Optional/Union flattened, Annotated unwrapped."""
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _members(typing.get_args(ann)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for a in typing.get_args(ann) for m in _members(a)]
    return [ann]


def _numeric_only(ann: Any) -> bool:
    """True when the annotation takes a number but neither a bool nor anything that could be one (Any)."""
    members = _members(ann)
    if any(m is bool or m is Any or m is object for m in members):
        return False
    return any(m in _NUMBER_TYPES for m in members)


def _element_annotations(ann: Any, kind: str) -> list[Any]:
    """Element (kind='seq') or value (kind='map') annotations of the container alternatives of `ann`."""
    out = []
    for m in _members(ann):
        origin = typing.get_origin(m)
        args = [a for a in typing.get_args(m) if a is not Ellipsis]
        if origin is None or not args:
            continue
        if kind == "seq" and origin in (list, tuple, set, frozenset, abc.Sequence, abc.Set):
            out.extend(args)
        elif kind == "map" and origin in (dict, abc.Mapping) and len(args) == 2:
            out.append(args[1])
    return out


def _not_a_number(value: Any, ann: Any) -> str | None:
    """Why `value` is unacceptable for a numeric annotation (a bool, or a non-finite number spelled as text)."""
    if isinstance(value, bool):
        return f"expected a number, got {str(value).lower()} (a boolean)" if _numeric_only(ann) else None
    if isinstance(value, str) and _numeric_only(ann) and str not in _members(ann):
        try:
            number = float(value)
        except ValueError:
            return None  # pydantic reports the parse error itself
        return None if math.isfinite(number) else f"{value!r} is not a finite number"
    if isinstance(value, (list, tuple, set, frozenset)):
        inner = _element_annotations(ann, "seq")
        if inner and all(_numeric_only(a) for a in inner):
            for i, item in enumerate(value):
                why = _not_a_number(item, inner[0] if len(inner) == 1 else float)
                if why:
                    return f"item {i}: {why}"
    if isinstance(value, dict):
        inner = _element_annotations(ann, "map")
        if inner and all(_numeric_only(a) for a in inner):
            for key, item in value.items():
                why = _not_a_number(item, inner[0])
                if why:
                    return f"key {key!r}: {why}"
    return None


def _is_bounded(field: Any) -> bool:
    """A field with a numeric bound (gt/ge/lt/le): a setting, where NaN or infinity is never meant."""
    return any(isinstance(m, (annotated_types.Gt, annotated_types.Ge, annotated_types.Lt, annotated_types.Le))
               for m in field.metadata)


class StrictModel(BaseModel):
    """Base for every rhlab config: unknown keys are errors (a typo must not be silently ignored), and numeric
    fields refuse booleans (`max_steps: true` would otherwise be 1) and spelled-out infinities/NaN."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    # A model-level check (a field-level "*" validator would break discriminated unions such as experiment arms).
    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            key = field.alias if field.alias and field.alias in data else name
            if key not in data:
                continue
            value = data[key]
            why = _not_a_number(value, field.annotation)
            if why is None and isinstance(value, float) and not math.isfinite(value) and _is_bounded(field):
                why = f"{value} is not a finite number"  # `gt=0` alone lets infinity through
            if why:
                raise PydanticCustomError("rhlab_not_a_number", "{field}: {why}", {"field": key, "why": why})
        return data


# -- validation and loading -----------------------------------------------------------------------------------


def _format_validation_error(source: str, err: ValidationError) -> str:
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        msg = e["msg"]
        if e["type"] == "rhlab_not_a_number":  # raised by the model, about one of its fields
            loc.append(str(e["ctx"]["field"]))
            msg = e["ctx"]["why"]
        where = ".".join(loc) or "<root>"
        lines.append(f"  - {where}: {msg}")
    return "\n".join(lines)


def _non_finite(data: Any, where: str = "") -> list[str]:
    """Dotted paths of NaN/infinite floats anywhere in plain data (e.g. from a `--set key=.nan` override)."""
    if isinstance(data, float) and not math.isfinite(data):
        return [where or "<root>"]
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _non_finite(v, f"{where}.{k}" if where else str(k))]
    if isinstance(data, (list, tuple)):
        return [p for i, v in enumerate(data) for p in _non_finite(v, f"{where}.{i}" if where else str(i))]
    return []


def validate(model: type[T], data: Any, source: str = "<data>") -> T:
    bad = _non_finite(data)
    if bad:
        raise ConfigError(f"invalid config {source}:\n" + "\n".join(
            f"  - {p}: not a finite number (NaN and infinity are not valid settings)" for p in bad))
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(source, err)) from None


class _ConfigYAMLError(Exception):
    def __init__(self, message: str, mark: Any):
        super().__init__(message)
        self.message = message
        self.line = mark.line + 1 if mark is not None else None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and non-finite floats instead of resolving them silently."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` then overriding a merged key is how merges are meant to be used
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable key: the base constructor reports it
                if first is not None:
                    raise _ConfigYAMLError(
                        f"duplicate key {key!r} (first given on line {first}); YAML would silently keep only the "
                        "last one — give each key once", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)

    def construct_finite_float(self, node):
        value = self.construct_yaml_float(node)
        if not math.isfinite(value):
            raise _ConfigYAMLError(f"{node.value!r} is not a finite number; settings must be finite",
                                   node.start_mark)
        return value


_StrictLoader.add_constructor("tag:yaml.org,2002:float", _StrictLoader.construct_finite_float)


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file (None when it holds no document: empty or comments only)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} is not UTF-8 text: byte 0x{raw[err.start]:02x} at offset {err.start} (line {line}) cannot be "
            "decoded; save the file as UTF-8") from None
    loader = _StrictLoader(text)
    loader.name = str(path)  # YAML error marks then name the file instead of "<unicode string>"
    try:
        return loader.get_single_data()
    except _ConfigYAMLError as err:
        raise ConfigError(f"{path}, line {err.line}: {err.message}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    finally:
        loader.dispose()


def load_config(model: type[T], path: str | Path, allow_empty: bool = False) -> T:
    """Load and validate a config file. An empty (or comments-only) file is an error unless `allow_empty`:
    a command that means "all defaults" must ask for it, so an accidentally empty file never starts a run."""
    data = load_yaml(path)
    if data is None:
        if not allow_empty:
            raise ConfigError(
                f"{path} is empty (no settings, only blank lines or comments); write the settings you want to use "
                "(the files under configs/ are examples) — an empty file is not taken to mean all defaults")
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return validate(model, data, str(path))


# -- overrides: the one merge of dotted settings into a config (`--set a.b=c` on CLIs, `overrides:` in specs) --------


def _parse_value(raw: str, where: str) -> Any:
    """A `--set` value as YAML reads it (`6` → 6, `[a, b]` → a list, nothing → None), refusing what load_yaml
    refuses (NaN, infinity, a key given twice)."""
    loader = _StrictLoader(raw)
    try:
        return loader.get_single_data()
    except _ConfigYAMLError as err:
        raise ConfigError(f"{where}: {err.message}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not a valid YAML value: {getattr(err, 'problem', None) or err}") from None
    finally:
        loader.dispose()


def _below(ann: Any) -> tuple[str, Any] | None:
    """What a dotted key can reach below a field of annotation `ann`: ("model", cls), ("map", value annotation) or
    ("any", None); None for a plain value, which has no keys."""
    models = [m for m in _members(ann) if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(models) == 1:
        return "model", models[0]
    if models:  # a union of models (e.g. arms): which one applies is only known after validation
        return "any", None
    for m in _members(ann):
        if m is Any or m is object:
            return "any", None
        if m is dict or m is abc.Mapping:
            return "map", Any
        if typing.get_origin(m) in (dict, abc.Mapping):
            args = typing.get_args(m)
            return "map", args[1] if len(args) == 2 else Any
    return None


def _set_dotted(data: dict, model: type[BaseModel], key: str, value: Any, source: str) -> None:
    """data[a][b]... = value for key "a.b...", checking each part against the model's fields (dicts it allows are
    created; free-form dict fields take any key)."""
    parts = key.split(".")
    if not all(p.strip() for p in parts):
        raise ConfigError(f"{source}: override key {key!r} has an empty part")
    node, kind, inner = data, "model", model
    for i, part in enumerate(parts):
        done = ".".join(parts[: i + 1])
        if kind == "model":
            field = next(((n, f) for n, f in inner.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                where = f"{'.'.join(parts[:i])} ({inner.__name__})" if i else inner.__name__
                raise ConfigError(f"{source}: unknown key {key!r}: {where} has no field {part!r}; fields: "
                                  f"{', '.join(f.alias or n for n, f in inner.model_fields.items())}")
            name, f = field
            slot, ann = f.alias or name, f.annotation  # model_dump(by_alias=True) keys
        else:
            slot, ann = part, inner
        if i == len(parts) - 1:
            node[slot] = value
            return
        nxt = _below(ann)
        child = node.get(slot)
        if nxt is None or (child is not None and not isinstance(child, dict)):
            raise ConfigError(f"{source}: override key {key!r}: {done} is a single setting, not a section with "
                              f"a key {parts[i + 1]!r}")
        if child is None:  # e.g. `grpo.lora.r=8` while lora is unset: the section is created with its defaults
            child = node[slot] = {}
        node, (kind, inner) = child, nxt


def dotted(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"grpo": {"max_steps": 6}} → {"grpo.max_steps": 6}: nested settings (a spec's inline `train.config`) as the
    dotted overrides apply_overrides takes, so they merge key by key. An empty mapping stays one value (`lora: {}`
    switches LoRA on with its defaults)."""
    out: dict[str, Any] = {}
    for k, v in nested.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(dotted(v, key + "."))
        else:
            out[key] = v
    return out


def apply_overrides(obj: M, overrides: Mapping[str, Any] | Sequence[str], source: str = "<overrides>") -> M:
    """`obj` with dotted settings replaced, revalidated as a whole: a new object of the same type.

    overrides: {"grpo.max_steps": 6, "prompt.arm": "neutral"} (typed values, e.g. a spec's `overrides:`) or
    ["grpo.max_steps=6", "prompt.arm=neutral"] (`--set` strings; each value read as YAML by the strict loader).
    Applied in order: a later key wins, and a key naming a section replaces the whole section (`safety: {...}`),
    while `grpo.max_steps` leaves the other grpo settings as they are. An unknown key, a bad value or a combination
    the model refuses raises ConfigError naming `source` and the key."""
    if isinstance(overrides, str):
        raise TypeError("overrides: a mapping or a list of 'KEY=VALUE' strings, not one string")
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides:
            key, eq, raw = str(item).partition("=")
            if not eq or not key.strip():
                raise ConfigError(f"{source}: override {item!r}: expected KEY=VALUE (e.g. grpo.max_steps=50)")
            items.append((key.strip(), _parse_value(raw, f"{source}: override {item!r}")))
    model = type(obj)
    data = obj.model_dump(by_alias=True)
    for key, value in items:
        if not isinstance(key, str):
            raise ConfigError(f"{source}: override key {key!r}: expected a dotted string such as grpo.max_steps")
        _set_dotted(data, model, key, value, source)
    keys = ", ".join(k for k, _ in items)
    return validate(model, data, f"{source} (overrides: {keys})" if keys else source)


def dump_yaml(obj: BaseModel | dict, path: str | Path) -> None:
    data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def jsonl_rows(path: str | Path, *, error: type[Exception] = ConfigError, what: str = "data",
               fields: tuple[str, ...] = ()) -> Iterator[tuple[int, str, dict]]:
    """(line number, "FILE:LINE", object) for each non-blank line of a user-supplied JSONL file. A missing file, a
    line that is not JSON, not an object, or lacks one of `fields` raises `error` naming the file and the line —
    the one reader behind every item/data file a user can hand in (probes, calibration, controls, safety prompts)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text (byte offset {err.start})") from None
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror or err})") from None
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise error(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(row, dict):
            raise error(f"{where}: expected an object" + (f" with {', '.join(fields)}" if fields else ""))
        missing = [k for k in fields if k not in row]
        if missing:
            raise error(f"{where}: missing {', '.join(missing)}")
        yield n, where, row

