"""Typed configuration: nested dataclasses filled from YAML and ``key.sub=value`` overrides.

A config is a tree of dataclasses. :func:`from_dict` builds one from plain data (what YAML gives)
and coerces every value to its field's declared type, so ``"1e-4"`` becomes a float and
``"true"`` a bool. Unknown keys are errors that name the key and list the valid ones, because a
misspelt key silently falling back to a default is the worst kind of config bug.

    config = load_config(TrainConfig, "run.yaml", overrides=["train.steps=400", "optim.g_betas=0.5,0.9"])
    text = dump_yaml(config)

Supported field types: ``bool``, ``int``, ``float``, ``str``, ``X | None``, ``tuple[T, ...]``,
``tuple[T1, T2]``, ``list[T]``, ``dict`` and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lbam.errors import LbamError

T = TypeVar("T")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~", ""}


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build the dataclass ``cls`` from ``data``, coercing values to the declared field types.

    Missing keys keep their defaults. ``where`` is the dotted path of this level, used in messages.

    Raises:
        LbamError: an unknown key (the message lists the valid keys at that level) or a value that
            cannot be converted to its field's type.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise LbamError(f"config section {where or '<root>'!r} must be a mapping, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [key for key in data if key not in fields]
    if unknown:
        level = f"in {where!r}" if where else "at the top level"
        raise LbamError(
            f"unknown config key {_join(where, unknown[0])!r}; valid keys {level}: {', '.join(fields)}"
        )
    values = {name: coerce(value, hints[name], _join(where, name)) for name, value in data.items()}
    return cls(**values)


def to_dict(config: Any) -> Any:
    """Plain data (dicts, lists, scalars) for a config, ready for YAML or JSON."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, tuple | list):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {str(k): to_dict(v) for k, v in config.items()}
    return config


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert ``value`` to the type ``annotation``; ``key`` names the field in error messages."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)

    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in _NONE)):
            return None
        errors = []
        for option in options:
            try:
                return coerce(value, option, key)
            except LbamError as error:
                errors.append(str(error))
        raise LbamError(errors[0] if len(errors) == 1 else f"config key {key!r}: cannot use {_show(value)}")
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        return from_dict(annotation, value, key)
    if annotation is Any:
        return value
    if annotation is bool:
        return _to_bool(value, key)
    if annotation is int:
        return _to_int(value, key)
    if annotation is float:
        return _to_float(value, key)
    if annotation is str:
        if isinstance(value, str | int | float | os.PathLike) and not isinstance(value, bool):
            return str(value)
        raise LbamError(f"config key {key!r} must be a string, got {_show(value)}")
    if origin is tuple:
        items = _to_sequence(value, key)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(items))
        if len(items) != len(args):
            raise LbamError(f"config key {key!r} needs {len(args)} values, got {len(items)}: {_show(value)}")
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(items, args, strict=True)))
    if origin is list:
        items = _to_sequence(value, key)
        return [coerce(v, args[0], f"{key}[{i}]") if args else v for i, v in enumerate(items)]
    if origin is dict or annotation is dict:
        if isinstance(value, str):
            value = _parse_yaml_value(value, key)
        if not isinstance(value, dict):
            raise LbamError(f"config key {key!r} must be a mapping, got {_show(value)}")
        return dict(value)
    raise TypeError(f"config field {key!r} has an unsupported type {annotation!r}")


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping; an empty file is an empty mapping."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LbamError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LbamError(f"cannot read config file {path}: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        detail = str(error).replace("\n", " ")
        raise LbamError(f"config file {path} is not valid YAML: {detail}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LbamError(f"config file {path} must hold a mapping at the top level, got {_show(data)}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into ``(["a", "b", "c"], value)``; the value is parsed as YAML.

    YAML parsing lets ``--set masks='[{kind: noise}]'`` give a list; plain scalars stay strings or
    numbers and are coerced to the field type later.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise LbamError(f"override {text!r} must look like key.sub=value")
    return key.split("."), _parse_yaml_value(raw.strip(), key)


def apply_overrides(
    cls: type, data: dict[str, Any], overrides: list[str | tuple[str, Any]]
) -> dict[str, Any]:
    """Return a copy of ``data`` with each override set.

    An override is ``"key.sub=value"`` (the value is parsed as YAML) or a ``("key.sub", value)``
    pair whose value is used as it is (command-line flags that take paths use this, so a path such
    as ``[x]`` is not read as a YAML list). Keys are checked against the dataclass tree of ``cls``
    here, so a misspelt override fails with the list of valid keys even when the YAML never
    mentioned that section.
    """
    result = _deep_copy(data)
    for override in overrides:
        if isinstance(override, tuple):
            path, value = override[0].split("."), override[1]
        else:
            path, value = parse_override(override)
        level_cls: Any = cls
        node = result
        for depth, name in enumerate(path):
            where = ".".join(path[:depth])
            hints = typing.get_type_hints(level_cls)
            names = [f.name for f in dataclasses.fields(level_cls) if f.init]
            if name not in names:
                level = f"in {where!r}" if where else "at the top level"
                raise LbamError(
                    f"unknown config key {'.'.join(path[: depth + 1])!r}; valid keys {level}: {', '.join(names)}"
                )
            if depth == len(path) - 1:
                node[name] = value
                break
            annotation = hints[name]
            if annotation is dict or typing.get_origin(annotation) is dict:
                # A free mapping (e.g. model.generator): its keys are checked where it is used.
                _set_nested(node, path[depth:], value)
                break
            if not dataclasses.is_dataclass(annotation):
                raise LbamError(f"config key {'.'.join(path[: depth + 1])!r} has no sub-keys")
            child = node.get(name)
            if not isinstance(child, dict):
                child = {}
                node[name] = child
            node = child
            level_cls = annotation
    return result


def load_config(
    cls: type[T],
    source: str | os.PathLike | dict[str, Any] | None = None,
    overrides: list[str | tuple[str, Any]] | None = None,
) -> T:
    """A typed config from a YAML file (or a mapping) plus ``key.sub=value`` overrides."""
    data = {} if source is None else source if isinstance(source, dict) else load_yaml(source)
    return from_dict(cls, apply_overrides(cls, data, list(overrides or [])))


def dump_yaml(config: Any) -> str:
    """YAML text for a config; :func:`load_config` on it gives the same config back."""
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=False)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists and leaves are kept as values)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = _join(prefix, key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def _to_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise LbamError(f"config key {key!r} must be true or false, got {_show(value)}")


def _to_int(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise LbamError(f"config key {key!r} must be an integer, got {_show(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip().replace("_", ""))
        except ValueError:
            number = None
        if number is not None and number.is_integer():
            return int(number)
    raise LbamError(f"config key {key!r} must be an integer, got {_show(value)}")


def _to_float(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise LbamError(f"config key {key!r} must be a number, got {_show(value)}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise LbamError(f"config key {key!r} must be a number, got {_show(value)}")


def _to_sequence(value: Any, key: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        # "0.5,0.9" on the command line; "[0.5, 0.9]" arrives already parsed by YAML
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, int | float | dict):
        return [value]
    raise LbamError(f"config key {key!r} must be a list, got {_show(value)}")


def _parse_yaml_value(raw: str, key: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        raise LbamError(f"cannot parse the value of {key!r}: {raw!r}") from None


def _set_nested(node: dict[str, Any], path: list[str], value: Any) -> None:
    for name in path[:-1]:
        child = node.get(name)
        if not isinstance(child, dict):
            child = {}
            node[name] = child
        node = child
    node[path[-1]] = value


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
