"""Configuration dataclasses whose fields state each fact once: type, default, bounds, help, tags.

    @dataclass
    class Config:
        lr: float = setting(1e-3, above=0, help="peak learning rate")
        layers: int = setting(3, low=1, high=1024, fixed_on_resume=True)
        sizes: tuple[int, int] = setting((10, 5), low=1, flag=False)

    check(values, Config, source="my.json")      # keys, types, bounds -> values (JSON lists as tuples)
    from_dict(Config, values, source="my.json")  # check, then Config(**values) with its own validate()
    add_flags(parser, Config)                    # --lr, --layers: types, help and defaults from the fields
    fields_with(Config, "fixed_on_resume")       # ('layers',)

Types come from the annotations (int, float, bool, str, X | None, tuple[int, int], list, dict, Any);
a float takes an int, a number never a bool. A problem raises the caller's error class naming the
source, the field, what it expects and the value: "my.json: setting 'lr' must be a finite number > 0, got 0.0".
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Mapping

from .errors import ConfigError

_KEY = "minitf.config"  # the key of a field's Spec in dataclasses.field(metadata=...)


@dataclass(frozen=True)
class Spec:
    """What a field accepts beyond its type, and how it shows on the command line."""
    low: float | None = None  # value >= low
    high: float | None = None  # value <= high
    above: float | None = None  # value > above
    below: float | None = None  # value < below
    choices: tuple[Any, ...] | None = None
    finite: bool = True  # a float field refuses inf (nan always)
    help: str = ""
    flag: bool = True  # False: no command-line flag
    tags: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # e.g. fixed_on_resume=True


def setting(default: Any = MISSING, *, default_factory: Any = MISSING, low: float | None = None,
            high: float | None = None, above: float | None = None, below: float | None = None,
            choices: Any = None, finite: bool = True, help: str = "", flag: bool = True, **tags: Any) -> Any:
    """A dataclasses.field with its rules in metadata; bounds apply to each number of a tuple."""
    spec = Spec(low, high, above, below, tuple(choices) if choices is not None else None, finite, help, flag,
                dict(tags))
    return dataclasses.field(default=default, default_factory=default_factory, metadata={_KEY: spec})


def setting_like(cls: type, name: str, **changes: Any) -> Any:
    """Field `name` of dataclass `cls` again (default and rules), with `changes` to its Spec or
    default (default=..., low=..., a tag=...): a field declared once and reused by another class."""
    f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if f is None:
        raise KeyError(f"{cls.__name__} has no field {name!r}")
    spec = spec_of(f)
    default = changes.pop("default", f.default)
    rules = {k: changes.pop(k) for k in list(changes) if k in Spec.__dataclass_fields__ and k != "tags"}
    if rules.get("choices") is not None:
        rules["choices"] = tuple(rules["choices"])
    new = dataclasses.replace(spec, **rules, tags={**spec.tags, **changes})
    factory = f.default_factory if default is MISSING else MISSING
    return dataclasses.field(default=default, default_factory=factory, metadata={_KEY: new})


def spec_of(f: dataclasses.Field) -> Spec:
    return f.metadata.get(_KEY, Spec())  # (a plain field has the empty one)


def fields_with(cls: type, tag: str) -> tuple[str, ...]:
    """Names of the fields of `cls` whose tag `tag` is true, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(cls) if spec_of(f).tags.get(tag))


def defaults(cls: type) -> dict[str, Any]:
    """{name: default} of each field of `cls` that has a default (a factory's value is made anew)."""
    return {f.name: f.default if f.default is not MISSING else f.default_factory()
            for f in dataclasses.fields(cls) if f.default is not MISSING or f.default_factory is not MISSING}


class _Invalid(Exception):
    """(name, what it expects, the value as shown): one value breaks its field's rule."""


def check(values: Any, cls: type | None = None, *, source: str = "", label: str = "setting {!r}",
          error: type[Exception] = ConfigError) -> dict[str, Any]:
    """Check a dict (or a dataclass instance) against the fields of `cls`: unknown keys, missing
    required ones, types and bounds. Returns the values with JSON lists of tuple fields as tuples
    (an instance gets those back as attributes too). Raises `error` whose message starts with
    "`source`: " and names the field with `label` (e.g. "model_config.{}")."""
    instance = dataclasses.is_dataclass(values) and not isinstance(values, type)
    cls = type(values) if instance and cls is None else cls
    given = {f.name: getattr(values, f.name) for f in dataclasses.fields(cls)} if instance else dict(values)
    prefix = f"{source}: " if source else ""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise error(f"{prefix}unknown {', '.join(label.format(k) for k in unknown)}; known: {', '.join(fields)}")
    for name, f in fields.items():
        if name not in given and f.default is MISSING and f.default_factory is MISSING:
            raise error(f"{prefix}{label.format(name)} is required")
    hints = typing.get_type_hints(cls)
    try:
        out = {name: _checked(name, value, hints[name], spec_of(fields[name])) for name, value in given.items()}
    except _Invalid as exc:
        name, expected, shown = exc.args
        raise error(f"{prefix}{label.format(name)} must be {expected}, got {shown}") from None
    for name in (out if instance else ()):
        object.__setattr__(values, name, out[name])  # (a tuple for a list)
    return out


def from_dict(cls: type, values: Mapping[str, Any], source: str = "config", *, label: str = "setting {!r}",
              error: type[Exception] = ConfigError) -> Any:
    """`cls(**values)` after check(); a ConfigError of the class's own validate() (cross-field
    rules) comes out as `error` with the same "`source`: " prefix."""
    checked = check(values, cls, source=source, label=label, error=error)
    try:
        return cls(**checked)
    except ConfigError as exc:
        raise error(f"{source}: {exc}" if source else str(exc)) from None


def _checked(name: str, value: Any, hint: Any, spec: Spec) -> Any:
    """The value (a list as a tuple for a tuple field), or _Invalid(name, expected, shown)."""
    base, nullable = _split_optional(hint)
    if value is None and nullable:
        return None
    if typing.get_origin(base) is tuple:
        items = typing.get_args(base)
        count = None if items[-1:] == (Ellipsis,) else len(items)
        if not isinstance(value, (list, tuple)) or count is not None and len(value) != count:
            expected = f"a list of {count or 'any number of'} {_kind(items[0], plural=True)}"
            raise _Invalid(name, expected + " or null" * nullable, _typed(value))
        return tuple(_checked(f"{name}[{i}]", v, items[0 if count is None else i], spec)
                     for i, v in enumerate(value))
    if not _is_a(value, base):
        raise _Invalid(name, _kind(base) + " or null" * nullable, _typed(value))
    if base in (int, float) and type(value) not in (int, float):  # e.g. NumPy's int64, float32: as Python's
        value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if spec.choices is not None and value not in spec.choices:
        raise _Invalid(name, f"one of {list(spec.choices)}", _short(value))
    if base in (int, float) and not _in_range(value, spec):
        kind = "a finite number" if base is float and spec.finite else _kind(base)
        raise _Invalid(name, f"{kind} {_range_text(spec)}".strip(), _short(value))
    if base in (int, float) and isinstance(value, int) and abs(value) > _LARGEST_INT:
        raise _Invalid(name, f"{_kind(base)} of at most 1e308 in size", _short(value))
    return value


_LARGEST_INT = 10**308  # a larger integer cannot become a float: it would overflow where it meets one


def _split_optional(hint: Any) -> tuple[Any, bool]:
    """(X, True) for X | None or Optional[X]; (hint, False) otherwise."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _is_a(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    if hint in (int, float):  # a float field takes an int; a bool is no number (NumPy's neither)
        kind = numbers.Real if hint is float else numbers.Integral
        return isinstance(value, kind) and not isinstance(value, bool) and "bool" not in type(value).__name__
    return isinstance(value, typing.get_origin(hint) or hint)  # list[dict] -> a list (not its items)


def _in_range(value: float, spec: Spec) -> bool:
    if isinstance(value, float) and (math.isnan(value) or spec.finite and math.isinf(value)):
        return False  # (an int is never nan, and may be too large for a float)
    return ((spec.low is None or value >= spec.low) and (spec.high is None or value <= spec.high)
            and (spec.above is None or value > spec.above) and (spec.below is None or value < spec.below))


def _range_text(spec: Spec) -> str:
    """'in 1 .. 64', 'in [0, 1)', '>= 1', '> 0', '' for no bounds."""
    low = ("(", ">", spec.above) if spec.above is not None else ("[", ">=", spec.low)
    high = (")", "<", spec.below) if spec.below is not None else ("]", "<=", spec.high)
    if low[2] is not None and high[2] is not None:
        closed = low[0] + high[0] == "[]"
        return f"in {low[2]} .. {high[2]}" if closed else f"in {low[0]}{low[2]}, {high[2]}{high[0]}"
    side = low if low[2] is not None else high
    return f"{side[1]} {side[2]}" if side[2] is not None else ""


_KINDS = {int: ("an integer", "integers"), float: ("a number", "numbers"), bool: ("true or false", "booleans"),
          str: ("a string", "strings"), list: ("a list", "lists"), dict: ("an object (dict)", "objects")}


def _kind(hint: Any, plural: bool = False) -> str:
    names = _KINDS.get(typing.get_origin(hint) or hint)
    return names[plural] if names else getattr(hint, "__name__", str(hint))


def _typed(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {_short(value)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def add_flags(parser: argparse.ArgumentParser, cls: type, *, other: Any = None,
              other_name: str = "demo") -> list[str]:
    """One flag per field of `cls` (but those with flag=False): --max-len for max_len, its type
    from the annotation (a bool: --x / --no-x; a tuple: that many values), help from the Spec and
    "(default D)", plus "; demo X" where the instance `other` holds another value. Every flag
    defaults to None (not given). Returns the flags' dest names, for given_flags()."""
    hints, base_values = typing.get_type_hints(cls), defaults(cls)
    names = []
    for f in (f for f in dataclasses.fields(cls) if spec_of(f).flag):
        base, _ = _split_optional(hints[f.name])
        options: dict[str, Any] = {}
        if base is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(base) is tuple:
            items = typing.get_args(base)
            options.update(type=items[0], nargs="+" if items[-1:] == (Ellipsis,) else len(items),
                           metavar=_METAVARS.get(items[0], "VALUE"))  # --sizes N N N, not SIZES SIZES SIZES
        else:
            options["type"] = base if base in (int, float, str) else str
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                            help=_flag_help(f.name, spec_of(f), base_values, other, other_name), **options)
        names.append(f.name)
    return names


_METAVARS = {int: "N", float: "X", str: "TEXT"}


def _flag_help(name: str, spec: Spec, base_values: dict[str, Any], other: Any, other_name: str) -> str:
    choices = "one of " + ", ".join(map(str, spec.choices)) if spec.choices else ""
    text = "; ".join(part for part in (spec.help, choices) if part)
    if name in base_values:
        default, note = base_values[name], ""
        if other is not None and getattr(other, name) != default:
            note = f"; {other_name} {_shown(getattr(other, name))}"
        text = f"{text} (default {_shown(default)}{note})".strip()
    return text.replace("%", "%%")  # argparse formats help with %


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def given_flags(args: argparse.Namespace, names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """{name: value} of the flags among `names` given on the command line (not None)."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
