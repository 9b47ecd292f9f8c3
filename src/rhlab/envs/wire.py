"""Typed JSON encoding of plain Python values, and type-aware equality on decoded values.

This module is stdlib-only and self-contained: its source is also shipped into sandbox jobs, where the harness
uses it to serialise a solution's outputs. The encoder accepts exact builtin types only (`type(x) is int`, never
a subclass), so an object with its own `__eq__` cannot cross the wire; the host compares what it decodes, which
are fresh builtins the solution never touched.

    null/true/false/number/string  -> themselves          list  -> [..]
    {"t": [..]} tuple   {"s": [..]} set   {"fs": [..]} frozenset   {"d": [[k, v], ..]} dict   {"b": hex} bytes
    {"f": "nan"|"inf"|"-inf"} non-finite float
"""

import hashlib
import json
import math

_type = type  # saved so a harness that imports this before the solution keeps the real builtins
_len = len
MAX_DEPTH = 64
MAX_ITEMS = 200_000


def encode(value, _depth=0, _budget=None):
    budget = _budget if _budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError("value too large to serialise")
    if _depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    t = _type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value
    if t is float:
        if math.isnan(value):
            return {"f": "nan"}
        if math.isinf(value):
            return {"f": "inf" if value > 0 else "-inf"}
        return value
    if t is list:
        return [encode(v, _depth + 1, budget) for v in value]
    if t is tuple:
        return {"t": [encode(v, _depth + 1, budget) for v in value]}
    if t is set or t is frozenset:
        return {"s" if t is set else "fs": [encode(v, _depth + 1, budget) for v in value]}
    if t is dict:
        return {"d": [[encode(k, _depth + 1, budget), encode(v, _depth + 1, budget)] for k, v in value.items()]}
    if t is bytes:
        return {"b": value.hex()}
    raise TypeError("cannot serialise a value of type " + repr(getattr(t, "__qualname__", "?")))


def decode(obj):
    t = _type(obj)
    if obj is None or t in (bool, str, int, float):
        return obj
    if t is list:
        return [decode(v) for v in obj]
    if t is dict and _len(obj) == 1:
        (tag, v), = obj.items()
        if tag == "t":
            return tuple(decode(x) for x in v)
        if tag == "s":
            return set(decode(x) for x in v)
        if tag == "fs":
            return frozenset(decode(x) for x in v)
        if tag == "d":
            return {decode(k): decode(x) for k, x in v}
        if tag == "b":
            return bytes.fromhex(v)
        if tag == "f":
            return float(v)
    raise ValueError("malformed wire value")


def _is_number(x):
    return _type(x) is int or _type(x) is float


def values_equal(out, expected, tol=None):
    """Type-aware equality: bools only equal bools, containers must have the same type, ints and floats may
    meet (as `==` lets them in the original asserts), floats within `tol` when a tolerance is given."""
    te = _type(expected)
    if te is bool or expected is None:
        return _type(out) is te and out == expected
    if _is_number(expected):
        if not _is_number(out):
            return False
        if tol is not None:
            return abs(out - expected) < tol
        if _type(out) is float and _type(expected) is float and math.isnan(out) and math.isnan(expected):
            return True
        return out == expected
    if _type(out) is not te:
        return False
    if te is list or te is tuple:
        return _len(out) == _len(expected) and all(values_equal(a, b, tol) for a, b in zip(out, expected))
    if te is dict:
        if set(out) != set(expected):
            return False
        return all(values_equal(out[k], expected[k], tol) for k in expected)
    return out == expected  # str, bytes, set, frozenset of builtins


def canon(enc):
    """Order- and 6-vs-6.0-insensitive form of an encoded value (digests must agree where `==` would)."""
    t = _type(enc)
    if t is float and enc == int(enc) and abs(enc) < 2 ** 53:
        return int(enc)
    if t is list:
        return [canon(v) for v in enc]
    if t is dict:
        (tag, v), = enc.items()
        if tag in ("s", "fs"):
            return {tag: sorted((canon(x) for x in v), key=lambda x: json.dumps(x, sort_keys=True))}
        if tag == "d":
            pairs = [[canon(k), canon(x)] for k, x in v]
            return {tag: sorted(pairs, key=lambda p: json.dumps(p[0], sort_keys=True))}
        if tag == "t":
            return {tag: [canon(x) for x in v]}
    return enc


def digest(enc):
    return hashlib.sha256(json.dumps(canon(enc), sort_keys=True).encode()).hexdigest()


def normalize_stdout(text):
    """Compare program output modulo trailing whitespace on lines and blank lines at the ends."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines())
