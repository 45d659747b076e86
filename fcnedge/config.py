"""Recipes as config: a typed settings dataclass (``TrainConfig``, say) read from a YAML file, overridden by the
options given on the command line, printed back as YAML.

Every value, from a file or the command line, goes through one coercion per field type (``Path``, ``HxW`` tuples,
``MIN,MAX`` pairs, comma lists, enums, optionals), so an option is parsed in one place. A relative ``data`` path in a
recipe file resolves against the file's own folder, like a dataset file; the run's own files (``out``, and
``init_from``, an earlier stage's output) against the current folder, where the runs are.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from fcnedge.errors import ConfigError

T = TypeVar("T")

__all__ = ["build_config", "coerce", "config_to_dict", "dump_config", "read_recipe"]

# Fields that name data beside the recipe: relative paths in a recipe file resolve against the file's folder.
INPUT_PATHS = ("data",)


def read_recipe(path: Path) -> dict[str, Any]:
    """The mapping in a YAML recipe file, its relative input paths resolved against the file's folder.

    Raises:
        ConfigError: the file is missing, unreadable, not YAML, or not a mapping.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist: check the path given to --config")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0][:160]
        raise ConfigError(f"recipe {path} cannot be read as YAML ({reason}): fix the file") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"recipe {path} holds a {type(doc).__name__}, not a mapping of settings: write key: value")
    out = {str(k).replace("-", "_"): v for k, v in doc.items()}
    for key in INPUT_PATHS:
        value = out.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            out[key] = str(path.parent / value)
    return out


def build_config(cls: type[T], values: dict[str, Any], *, where: str) -> T:
    """``cls(**values)`` with each value coerced to its field's type.

    Args:
        where: what the values came from, for messages ("recipe r.yaml", "the command line").

    Raises:
        ConfigError: an unknown key (with the closest valid one), or a value its field cannot take.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{where}: unknown setting {key!r}{hint}; valid: {', '.join(fields)}")
        kwargs[key] = coerce(value, hints[key], what=f"{where}: {key}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field missing
        raise ConfigError(f"{where}: {exc}") from None


def coerce(value: Any, hint: Any, *, what: str) -> Any:
    """``value`` (YAML scalar or list, or a command-line string) as type ``hint``.

    Raises:
        ConfigError: the value does not fit the type.
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], what=what)
    if value is None:
        raise ConfigError(f"{what} is empty: give a value")
    if origin is tuple:
        return _tuple(value, args, what=what)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{what} {value!r} is invalid: give a mapping")
        return dict(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise ConfigError(
                f"{what} {value!r} is invalid: choose from {', '.join(str(m.value) for m in hint)}"
            ) from None
    if hint is Path:
        return Path(str(value)).expanduser()
    if hint is bool:
        return _bool(value, what=what)
    if hint in (int, float, str):
        return _scalar(value, hint, what=what)
    return value


def _bool(value: Any, *, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ConfigError(f"{what} {value!r} is invalid: give true or false")


def _scalar(value: Any, hint: type, *, what: str) -> Any:
    if hint is int and (isinstance(value, bool) or (isinstance(value, float) and not value.is_integer())):
        raise ConfigError(f"{what} {value!r} is invalid: give a whole number")
    try:
        return hint(value)
    except (TypeError, ValueError):
        kind = {int: "a whole number", float: "a number", str: "text"}[hint]
        raise ConfigError(f"{what} {value!r} is invalid: give {kind}") from None


def _tuple(value: Any, args: tuple[Any, ...], *, what: str) -> tuple[Any, ...]:
    """``HxW`` / ``A,B`` strings, or YAML lists, as a tuple of the element type (``tuple[X, ...]``: any length)."""
    if isinstance(value, str):
        hw = len(args) == 2 and args[0] is int and args[1] is int  # HxW
        items: list[Any] = [v.strip() for v in (value.lower().split("x") if hw else value.split(",")) if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    variadic = len(args) == 2 and args[1] is Ellipsis
    kinds = [args[0]] * len(items) if variadic else list(args)
    if not variadic and len(items) != len(kinds):
        shape = "HxW (e.g. 320x480)" if kinds == [int, int] else ",".join(k.__name__.upper() for k in kinds)
        raise ConfigError(f"{what} {value!r} is invalid: give {shape}")
    if variadic and not items and isinstance(value, str):  # a YAML [] means none; text naming nothing is a slip
        raise ConfigError(f"{what} {value!r} names nothing: give a comma-separated list or a YAML list")
    return tuple(coerce(v, k, what=what) for v, k in zip(items, kinds, strict=True))


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A config as plain YAML/JSON values: paths and enums as strings, tuples as lists."""

    def plain(v: Any) -> Any:
        if isinstance(v, enum.Enum):
            return v.value
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return v

    return {f.name: plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def dump_config(cfg: Any) -> str:
    """A config as a YAML recipe (every setting, in field order): what ``--print-config`` shows."""
    import yaml

    return str(yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None, allow_unicode=True))
