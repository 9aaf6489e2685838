"""Recipe files for egoforge's trainers: YAML + dotted ``key=value`` overrides, and typed configs from them."""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml


class RecipeError(ValueError):
    """A recipe or override is malformed; the message names the file and the key."""


class RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that ``1e-4`` (an exponent without a dot) is a float, as in YAML 1.2 and in
    every trainer's docs; PyYAML's YAML 1.1 reads it as the string "1e-4", which a trainer then fails on."""


RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def read_yaml(text: str) -> Any:
    """YAML text as a recipe reads it (safe: no Python objects; ``1e-4`` is a float)."""
    return yaml.load(text, Loader=RecipeLoader)  # noqa: S506 - RecipeLoader is a SafeLoader


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=3`` -> (["a", "b"], 3): the value is read as YAML (numbers, ``1e-4`` included, booleans, null, lists).

    >>> parse_override("optim.lr=1e-4")
    (['optim', 'lr'], 0.0001)
    >>> parse_override("data.files=[a.json, b.json]")
    (['data', 'files'], ['a.json', 'b.json'])
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"override {text!r} is not key=value")
    try:
        value = read_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise RecipeError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return key.strip().split("."), value


def load_recipe(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a recipe and apply overrides (nested keys with dots; unknown keys are kept for the trainer to check)."""
    path = Path(path)
    try:
        recipe = read_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe not found") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(recipe, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of keys to values")
    for text in overrides:
        keys, value = parse_override(text)
        node = recipe
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise RecipeError(f"{path}: override {text!r}: {key!r} is not a mapping")
            node = child
        node[keys[-1]] = value
    return recipe


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check/convert a YAML value to a dataclass field type (ints for floats are widened, nested dataclasses)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except RecipeError as exc:
                errors.append(str(exc))
        raise RecipeError(errors[0] if errors else f"{where}: unsupported value {value!r}")
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}")
        return build_config(annotation, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{where}: expected a list, got {value!r}")
        (inner, *_) = typing.get_args(annotation) or (Any,)
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):
        try:  # YAML 1.1 reads "2e-4" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if annotation in (int, float, str, bool) and not (
        isinstance(value, annotation) and not (annotation is int and isinstance(value, bool))
    ):
        raise RecipeError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


def build_config(cls: type, values: dict[str, Any], where: str = "recipe") -> Any:
    """Instantiate dataclass ``cls`` from ``values``: unknown keys and wrong types name the offending key."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; known: {sorted(fields)}")
    kwargs = {name: _coerce(value, hints[name], f"{where}.{name}") for name, value in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class LocalPath:
    """A recipe key that names a local file or folder, and how a user gets it when it is missing."""

    key: str  # dotted, e.g. "data.pose_dir"; a list value is checked item by item
    how: str  # the command (or step) that produces it
    kind: str = "dir"  # "dir", "file" or "any"


def _lookup(recipe: dict, key: str) -> Any:
    node: Any = recipe
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def missing_local_paths(recipe: dict, paths: typing.Sequence[LocalPath]) -> list[str]:
    """One line per missing path: the key, the path and how to get it. Unset keys (None, "") are the trainer's to
    check; only paths the recipe names are looked for."""
    problems = []
    for spec in paths:
        value = _lookup(recipe, spec.key)
        for index, item in enumerate(value if isinstance(value, (list, tuple)) else [value]):
            if item in (None, "") or not isinstance(item, (str, os.PathLike)):
                continue
            path = Path(item).expanduser()
            found = {"dir": path.is_dir, "file": path.is_file, "any": path.exists}[spec.kind]()
            if not found:
                key = f"{spec.key}[{index}]" if isinstance(value, (list, tuple)) else spec.key
                what = {"dir": "no such folder", "file": "no such file", "any": "does not exist"}[spec.kind]
                if spec.kind == "dir" and path.is_file():
                    what = "is a file, expected a folder"
                problems.append(f"{key} = {item}: {what}; {spec.how}")
    return problems


def check_local_paths(recipe: dict, paths: typing.Sequence[LocalPath]) -> None:
    """RecipeError listing every missing local path of the recipe (before anything loads a model or data)."""
    problems = missing_local_paths(recipe, paths)
    if problems:
        raise RecipeError("missing local path(s), set the key or create the path:\n  " + "\n  ".join(problems))
