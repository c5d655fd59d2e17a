"""Typed, validated, immutable experiment configs: TOML presets plus ``--set a.b=value`` overrides.

An experiment declares ``schema: dict[section, dict[name, Field]]``. A config file is TOML::

    experiment = "eigen_convergence"     # which registered experiment kind runs it
    description = "q_k(t) of teacher and student"
    [train]
    steps = 2000
    lr = 0.5

:func:`build_config` fills defaults, applies overrides and validates (resolving a preset name /
TOML path / experiment kind is :func:`linkd.registry.load_config`, one layer up, since it needs the
registry of experiment kinds); every refusal is a :class:`~linkd.errors.ConfigError` whose ``str`` is
one line naming the key, the value and what is allowed. :func:`dump_toml` writes a config back so
that ``load(dump(c)) == c`` exactly (floats via ``repr``).

Supported field types: ``int``, ``float``, ``bool``, ``str``, ``list[int]``, ``list[float]``,
``list[str]``, and any of these ``| None`` (written ``none`` on the command line and ``"none"`` in
TOML, which has no null). List values are stored as tuples, so a :class:`Config` is immutable.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence

from linkd.errors import ConfigError, InputError

__all__ = [
    "Field", "Config", "Section", "Schema", "ConfigError", "build_config", "field_of",
    "parse_override", "parse_value", "dump_toml", "read_toml", "describe",
    "HEADER_KEYS", "OPTIMIZER_FIELDS",
]

Schema = Mapping[str, Mapping[str, "Field"]]
#: Top-level (non-section) keys a config file may hold.
HEADER_KEYS = ("experiment", "description", "figure")
_MISSING = object()
_SCALARS = (int, float, bool, str)


class _Spec(NamedTuple):
    base: type  # int | float | bool | str
    is_list: bool
    optional: bool


def _spec(tp: Any) -> _Spec:
    optional = False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(tp)) != 2:
            raise InputError(f"Field: type must be int, float, bool, str, a list of those, or X | None; got {tp!r} (only X | None unions)")
        optional, tp, origin = True, args[0], typing.get_origin(args[0])
    if origin in (list, tuple, Sequence):
        (elem, *rest) = typing.get_args(tp) or (None,)
        if elem not in _SCALARS or (origin is tuple and rest not in ([], [Ellipsis])):
            raise InputError(f"Field: type must be int, float, bool, str, a list of those, or X | None; got {tp!r} (lists of int, float, bool or str only)")
        return _Spec(elem, True, optional)
    if tp not in _SCALARS:
        raise InputError(f"Field: type must be int, float, bool, str, a list of those, or X | None; got {tp!r}")
    return _Spec(tp, False, optional)


@dataclass(frozen=True)
class Field:
    """One config entry: its type, default, one-line doc and allowed values.

    ``low``/``high`` bound numbers (and each element of a list), inclusive unless
    ``low_open``/``high_open``; ``choices`` restricts to a finite set.
    """

    type: Any
    default: Any
    doc: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple | None = None
    high_open: bool = False

    def __post_init__(self):
        _spec(self.type)  # fail at schema definition, not at first use
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))

    @property
    def spec(self) -> _Spec:
        return _spec(self.type)


#: Optimizer keys an experiment may put in its ``[train]`` section; they map one to one onto
#: ``EngineSpec(optimizer=, batch_size=, sampling=)`` and ``Hyper(momentum=)`` of
#: :mod:`linkd.engine` (the choices are the engine's ``OPTIMIZERS`` and ``SAMPLINGS``; minibatch SGD
#: moments: docs/theory.md §10).
OPTIMIZER_FIELDS: Mapping[str, Field] = {
    "optimizer": Field(str, "gd", "update rule: plain (stochastic) gradient steps, heavy ball, Nesterov or Adam",
                       choices=("gd", "momentum", "nesterov", "adam")),
    "momentum": Field(float, 0.9, "momentum μ (heavy ball / Nesterov) or Adam's b1", low=0.0, high=1.0,
                      high_open=True),
    "batch_size": Field(int | None, None, "minibatch size B (none = full batch)", low=1),
    "sampling": Field(str, "with_replacement", "how minibatches are drawn: B i.i.d. indices per step, B distinct "
                      "indices per step, or shuffled epochs",
                      choices=("with_replacement", "without_replacement", "shuffled")),
}


# ------------------------------------------------------------------------- describe / coerce


def _fmt(x: Any) -> str:
    return repr(x) if isinstance(x, str) else str(x).lower() if isinstance(x, bool) else str(x)


def _range_text(f: Field) -> str:
    if f.low is not None and f.high is not None:
        return f" in {'(' if f.low_open else '['}{f.low}, {f.high}{')' if f.high_open else ']'}"
    if f.low is not None:
        return f" {'>' if f.low_open else '>='} {f.low}"
    if f.high is not None:
        return f" {'<' if f.high_open else '<='} {f.high}"
    return ""


def describe(f: Field) -> str:
    """What a field accepts, in words (used as the ``allowed`` part of error messages)."""
    s = f.spec
    if f.choices is not None:
        one = "one of " + ", ".join(_fmt(c) for c in f.choices)
    else:
        one = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[s.base]
        one += _range_text(f)
    if s.is_list:
        one = f"a list (comma-separated or [a, b]) of {'values that are ' if f.choices else ''}" + (
            one.replace("an integer", "integers").replace("a number", "numbers")
            .replace("a string", "strings").replace("one of", "each one of"))
    return one + (", or none" if s.optional else "")


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _scalar_from_text(key: str, f: Field, text: str) -> Any:
    t, base = text.strip(), f.spec.base
    try:
        if base is bool:
            if t.lower() in _TRUE:
                return True
            if t.lower() in _FALSE:
                return False
            raise ConfigError(key, text, describe(f), "wrong type")
        if base is int:
            try:
                return int(t.replace("_", ""))
            except ValueError:
                x = float(t)
                if not x.is_integer():
                    raise
                return int(x)
        if base is float:
            return float(t.replace("_", ""))
    except ValueError:
        raise ConfigError(key, text, describe(f), "wrong type") from None
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        t = t[1:-1]
    return t


def _scalar_from_value(key: str, f: Field, v: Any) -> Any:
    base = f.spec.base
    if base is bool and isinstance(v, bool):
        return v
    if base is int and isinstance(v, int) and not isinstance(v, bool):
        return v
    if base is int and isinstance(v, float) and v.is_integer():
        return int(v)
    if base is float and isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if base is str and isinstance(v, str):
        return v
    raise ConfigError(key, v, describe(f), "wrong type")


def _check(key: str, f: Field, v: Any, shown: Any) -> None:
    if isinstance(v, float) and not math.isfinite(v):
        raise ConfigError(key, shown, describe(f), "not a finite number")
    if f.choices is not None and v not in f.choices:
        near = difflib.get_close_matches(str(v), [str(c) for c in f.choices], n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(key, shown, describe(f), "not one of the choices" + hint)
    if f.low is None and f.high is None:
        return
    bad = isinstance(v, float) and math.isnan(v)
    if f.low is not None:
        bad |= v <= f.low if f.low_open else v < f.low
    if f.high is not None:
        bad |= v >= f.high if f.high_open else v > f.high
    if bad:
        raise ConfigError(key, shown, describe(f), "out of range")


def _coerce(key: str, f: Field, raw: Any, *, from_text: bool = False) -> Any:
    """Validate ``raw`` for field ``f``: a TOML/Python value, or command-line text if
    ``from_text``. Returns the typed value (lists as tuples); raises :class:`ConfigError`."""
    s = f.spec
    shown = raw
    if raw is None and s.optional:
        return None
    if isinstance(raw, str) and s.optional and raw.strip().lower() in ("none", "null"):
        return None
    if s.is_list:
        if from_text and isinstance(raw, str):
            t = raw.strip()
            if t.startswith("["):
                try:
                    items, from_text = tomllib.loads(f"v = {t}")["v"], False
                except tomllib.TOMLDecodeError:
                    raise ConfigError(key, raw, describe(f), "not a valid TOML array") from None
            else:
                items = [p for p in t.split(",")] if t else []
        elif isinstance(raw, (list, tuple)):
            items = list(raw)
        else:
            raise ConfigError(key, raw, describe(f), "wrong type (expected a list)")
        conv = _scalar_from_text if from_text else _scalar_from_value
        out = []
        for x in items:
            try:
                out.append(conv(key, f, x))
                _check(key, f, out[-1], shown)
            except ConfigError as e:
                raise ConfigError(key, shown, e.allowed, f"{e.problem} (element {x!r})") from None
        return tuple(out)
    v = _scalar_from_text(key, f, raw) if from_text and isinstance(raw, str) else _scalar_from_value(key, f, raw)
    _check(key, f, v, shown)
    return v


def parse_value(key: str, f: Field, text: str) -> Any:
    """Parse one command-line value for field ``f``: ``"none"`` for an optional field, a TOML array
    ``[1, 2]`` or comma-separated text for a list field; raises :class:`ConfigError`."""
    return _coerce(key, f, text, from_text=True)


# ------------------------------------------------------------------------------ Config


class Section(Mapping[str, Any]):
    """Read-only view of one config section; values also readable as attributes."""

    __slots__ = ("_name", "_values")

    def __init__(self, name: str, values: Mapping[str, Any]):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_values", dict(values))

    def __getitem__(self, k: str) -> Any:
        return self._values[k]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, k: str) -> Any:
        try:
            return self._values[k]
        except KeyError:
            raise AttributeError(f"config section [{self._name}] has no key {k!r}") from None

    def __setattr__(self, k, v):
        raise AttributeError("Config is immutable: use Config.with_overrides")

    def __repr__(self) -> str:
        return f"Section({self._name!r}, {self._values!r})"


class Config(Mapping[str, Section]):
    """Immutable, validated mapping ``section -> Section(name -> value)``.

    ``config["train"]["lr"] == config.train.lr == config.get("train.lr")``. Build with
    :func:`load_config` or :func:`build_config`; derive variants with :meth:`with_overrides`.
    Equality compares the experiment kind and the values (not description or source).
    """

    __slots__ = ("experiment", "description", "figure", "source", "origin", "schema", "_sections", "_validate")
    experiment: str
    description: str
    figure: bool
    source: str
    origin: dict[str, Any]
    schema: Schema
    _sections: dict[str, Section]
    _validate: Callable[["Config"], None] | None

    def __init__(self, experiment: str, schema: Schema, values: Mapping[str, Mapping[str, Any]], *,
                 description: str = "", figure: bool = True, source: str | None = None,
                 origin: Mapping[str, Any] | None = None, validate: Callable[["Config"], None] | None = None):
        s = object.__setattr__
        s(self, "experiment", experiment)
        s(self, "description", description)
        s(self, "figure", figure)
        s(self, "source", source if source is not None else experiment)
        s(self, "origin", dict(origin) if origin else {"type": "built in code", "name": self.source})
        s(self, "schema", schema)
        s(self, "_sections", {k: Section(k, v) for k, v in values.items()})
        s(self, "_validate", validate)

    def __setattr__(self, k, v):
        raise AttributeError("Config is immutable: use Config.with_overrides")

    def __getitem__(self, section: str) -> Section:
        return self._sections[section]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sections)

    def __len__(self) -> int:
        return len(self._sections)

    def __getattr__(self, name: str) -> Section:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._sections[name]
        except KeyError:
            raise AttributeError(f"config has no section {name!r}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return self.experiment == other.experiment and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Config(experiment={self.experiment!r}, {self.to_dict()!r})"

    def get(self, key: str, default: Any = _MISSING) -> Any:  # type: ignore[override]
        """``get("train.lr")`` -> value, ``get("train")`` -> Section. Unknown keys raise
        :class:`ConfigError` unless ``default`` is given."""
        section, _, name = key.partition(".")
        try:
            sec = self._sections[section]
            return sec if not name else sec[name]
        except KeyError:
            if default is not _MISSING:
                return default
            _raise_unknown(self.schema, key, None)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (lists as lists), e.g. for JSON."""
        return {sec: {k: list(v) if isinstance(v, tuple) else v for k, v in vals.items()}
                for sec, vals in self._sections.items()}

    def digest(self) -> str:
        """``"sha256:<hex>"`` of the experiment kind and every resolved value (not the description
        or origin): two configs with the same digest run the same computation."""
        text = json.dumps({"experiment": self.experiment, "values": self.to_dict()}, sort_keys=True,
                          separators=(",", ":"), allow_nan=True)
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()

    def validate(self) -> "Config":
        """Run the experiment's cross-field check (if any); returns ``self``."""
        if self._validate is not None:
            self._validate(self)
        return self

    def with_overrides(self, overrides: Sequence[str] | Mapping[str, Any]) -> "Config":
        """New config with ``["a.b=text", ...]`` (parsed) or ``{"a.b": value}`` (coerced)
        applied and validated (including the experiment's cross-field ``validate``)."""
        return build_config(self.experiment, self.schema, self.to_dict(), overrides,
                            description=self.description, figure=self.figure,
                            source=self.source, origin=self.origin, validate=self._validate)


# ----------------------------------------------------------------------------- building


def _raise_unknown(schema: Schema, key: str, value: Any) -> typing.NoReturn:
    section, _, name = key.partition(".")
    if section not in schema:
        near = difflib.get_close_matches(section, list(schema), n=2)
        hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
        raise ConfigError(key, value, "sections " + ", ".join(schema), f"unknown section {section!r}" + hint)
    keys = [f"{section}.{k}" for k in schema[section]]
    near = difflib.get_close_matches(key, keys, n=2)
    hint = f" (did you mean {' or '.join(near)}?)" if near else ""
    raise ConfigError(key, value, ", ".join(keys), "unknown key" + hint)


def field_of(schema: Schema, key: str, value: Any = None) -> Field:
    """The :class:`Field` at dotted ``key``; unknown keys raise with close matches."""
    section, dot, name = key.partition(".")
    if not dot or not name:
        raise ConfigError(key, value, "a dotted key section.name, e.g. train.lr", "not a dotted key")
    try:
        return schema[section][name]
    except KeyError:
        _raise_unknown(schema, key, value)


def parse_override(item: str) -> tuple[str, str]:
    """Split ``"a.b=value"`` into ``("a.b", "value")``."""
    key, eq, text = item.partition("=")
    key = key.strip()
    if not eq or "." not in key:
        raise ConfigError("--set", item, "key=value with a dotted key, e.g. train.lr=0.1", "malformed override")
    return key, text


def build_config(experiment: str, schema: Schema, table: Mapping[str, Any],
                 overrides: Sequence[str] | Mapping[str, Any] = (), *, description: str | None = None,
                 figure: bool | None = None, source: str | None = None, origin: Mapping[str, Any] | None = None,
                 validate: Callable[[Config], None] | None = None, where: str = "",
                 check: bool = True) -> Config:
    """Defaults <- ``table`` (parsed TOML: header keys + sections) <- ``overrides``, validated.

    ``validate`` is the experiment's cross-field check, kept on the config (re-run by
    :meth:`Config.with_overrides`) and run now unless ``check=False``. ``where`` (e.g. a file
    name) prefixes keys in error messages about the table.
    """
    pre = f"{where}: " if where else ""
    values = {sec: {k: f.default for k, f in fields.items()} for sec, fields in schema.items()}
    header: dict[str, Any] = {"description": "", "figure": True}
    for top, val in table.items():
        if isinstance(val, Mapping):
            if top not in schema:
                try:
                    _raise_unknown(schema, f"{top}.", "[section]")
                except ConfigError as e:
                    raise ConfigError(pre + f"[{top}]", "(section)", e.allowed, e.problem) from None
            for k, v in val.items():
                key = f"{top}.{k}"
                if k not in schema[top]:
                    try:
                        _raise_unknown(schema, key, v)
                    except ConfigError as e:
                        raise ConfigError(pre + key, v, e.allowed, e.problem) from None
                try:
                    values[top][k] = _coerce(key, schema[top][k], v)
                except ConfigError as e:
                    raise ConfigError(pre + key, e.value, e.allowed, e.problem) from None
        elif top == "experiment":
            continue
        elif top == "description" and isinstance(val, str):
            header["description"] = val
        elif top == "figure" and isinstance(val, bool):
            header["figure"] = val
        else:
            allowed = ("a string" if top == "description" else "true or false" if top == "figure"
                       else "top-level keys " + ", ".join(HEADER_KEYS) + " or a [section]")
            raise ConfigError(pre + top, val, allowed, "wrong type" if top in HEADER_KEYS else "unknown key")
    for sec, fields in schema.items():  # defaults are validated too (a schema bug shows early)
        for k, f in fields.items():
            values[sec][k] = _coerce(f"{sec}.{k}", f, values[sec][k])
    items = overrides.items() if isinstance(overrides, Mapping) else [parse_override(o) for o in overrides]
    for key, raw in items:
        f = field_of(schema, key, raw)
        sec, _, k = key.partition(".")
        values[sec][k] = _coerce(key, f, raw, from_text=not isinstance(overrides, Mapping))
    cfg = Config(experiment, schema, values,
                 description=header["description"] if description is None else description,
                 figure=header["figure"] if figure is None else figure, source=source, origin=origin,
                 validate=validate)
    if check:
        cfg.validate()
    return cfg


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error becomes a one-line :class:`ConfigError`."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("config file", str(path), "an existing .toml file", "no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("config file", str(path), "valid TOML (https://toml.io)", f"TOML syntax error: {e}") from None


# ------------------------------------------------------------------------------ writing

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def _toml_value(v: Any) -> str:
    if v is None:
        return '"none"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)  # shortest repr round-trips exactly; inf/-inf/nan are TOML too
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise InputError(f"dump_toml: config values must be None, bool, int, float, str or lists of those; got {type(v).__name__}")


def _toml_key(k: str) -> str:
    return k if _BARE.match(k) else _toml_str(k)


def dump_toml(config: Config) -> str:
    """The fully resolved config as TOML text; ``load(dump(c)) == c``."""
    lines = ["# linkd config, fully resolved: `linkd run <this file>` reproduces the run.",
             f"experiment = {_toml_str(config.experiment)}"]
    if config.description:
        lines.append(f"description = {_toml_str(config.description)}")
    if not config.figure:
        lines.append("figure = false")
    for sec, vals in config.items():
        lines += ["", f"[{_toml_key(sec)}]"]
        fields = config.schema.get(sec, {})
        for k, v in vals.items():
            doc = fields[k].doc if k in fields else ""
            comment = f"  # {' '.join(doc.split())}" if doc else ""
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}{comment}")
    return "\n".join(lines) + "\n"
