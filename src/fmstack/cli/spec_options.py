"""Command-line options generated from a pydantic spec: the field docs are the ``--help``.

A spec model (``TrainSpec``, ``CompressSpec``, ...) already says what each field means, what it
defaults to and which values it takes. ``spec_options`` turns its fields into Typer options, so a
command never copies a help text or a default by hand (copies drift). It owns the translation from a
field to a flag and back to a dict of fields; it knows nothing of any particular spec.

Usage::

    @app.command()
    @spec_options(
        TrainSpec,
        flags={"batch_size": Flag("--batch-size", "-b"), "task": Flag(default="classification")},
        hide={"schema_version", "peak_flops"},
    )
    def finetune(fields: dict[str, Any], json_output: JsonFlag = False) -> None:
        spec = parse_spec(fields)  # only the flags the user gave (and Flag defaults): the spec fills the rest

What a field becomes:

- its name with dashes (``batch_size`` -> ``--batch-size``); ``Flag("--other", "-o")`` renames it;
- its ``description`` is the help (``Flag(help=...)`` replaces it, choices included; a shown field
  without either is a programming error, raised when the command is defined: no flag unexplained);
- its default is shown in the help, but a flag the user does not give is left out of ``fields``, so
  the spec applies its own default (and defaults that depend on other fields keep working);
- ``bool``: ``--name`` when the default is False, ``--name/--no-name`` when it is True;
- ``Literal[...]`` and ``Enum``: a string whose choices the help lists; the spec validates it, so a
  bad value is reported together with every other problem of the spec;
- ``list[X]`` (also ``tuple``/``set``): a repeatable option;
- a nested pydantic model: skipped by default, or with ``nested="flatten"`` one option per inner
  field (``--outer-inner``), put back as ``{"outer": {"inner": value}}``;
- ``Flag(sets=VALUE)``: a switch that sets the field to VALUE when given (``--per-tensor`` for
  ``per_channel=False``, ``--static-calibration`` for ``calibration="static"``);
- ``Flag(default=...)``: a CLI default different from the spec's (always passed); ``Flag(required=True)``
  makes an optional field a required option; ``Flag(panel="LoRA")`` groups options in ``--help``.

The decorated function's own parameters (``--json``, arguments, ...) stay as they are; the generated
options come first in ``--help``, in field order.
"""

from __future__ import annotations

import enum
import functools
import inspect
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

R = TypeVar("R")
_UNSET: Any = object()  # "no value given" for Flag.sets / Flag.default (None is a real value)
_SCALARS = (str, int, float, Path)


@dataclass(frozen=True, init=False)
class Flag:
    """How one field appears on the command line, where it differs from the generated form."""

    names: tuple[str, ...]
    help: str | None
    default: Any
    sets: Any
    required: bool
    metavar: str | None
    panel: str | None

    def __init__(
        self,
        *names: str,
        help: str | None = None,
        default: Any = _UNSET,
        sets: Any = _UNSET,
        required: bool = False,
        metavar: str | None = None,
        panel: str | None = None,
    ) -> None:
        # A frozen dataclass with a custom __init__ (for the *names form) sets its fields this way.
        values = {"names": names, "help": help, "default": default, "sets": sets}
        values |= {"required": required, "metavar": metavar, "panel": panel}
        for key, value in values.items():
            object.__setattr__(self, key, value)


@dataclass(frozen=True)
class _Option:
    """One generated option: the Python parameter Typer sees, and the field path it fills."""

    param: inspect.Parameter
    path: tuple[str, ...]
    sets: Any


def spec_options(
    model: type[BaseModel],
    *,
    flags: Mapping[str, Flag] | None = None,
    hide: Collection[str] = (),
    nested: Literal["skip", "flatten"] = "skip",
    into: str = "fields",
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorate a Typer command so that ``model``'s fields are its options, passed as ``into``.

    ``flags`` and ``hide`` are keyed by field name (``"outer.inner"`` for a flattened nested field).
    """
    _check_keys(model, flags or {}, hide)
    options = _options(model, (), flags or {}, set(hide), nested)

    def decorate(func: Callable[..., R]) -> Callable[..., R]:
        own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != into]
        clash = {p.name for p in own} & {o.param.name for o in options}
        if clash:
            raise TypeError(f"{func.__name__}: parameters {sorted(clash)} clash with generated options")

        @functools.wraps(func)
        def command(**kwargs: Any) -> R:
            fields: dict[str, Any] = {}
            for option in options:
                value = kwargs.pop(option.param.name)
                if value is None:
                    continue  # not given: the spec's own default applies
                _put(fields, option.path, option.sets if option.sets is not _UNSET else value)
            return func(**kwargs, **{into: fields})

        params = [o.param for o in options] + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # Typer must read the signature above, not the wrapped function
        return command

    return decorate


def _check_keys(model: type[BaseModel], flags: Mapping[str, Flag], hide: Collection[str]) -> None:
    known = set(_field_paths(model))
    unknown = (set(flags) | set(hide)) - known
    if unknown:
        raise TypeError(f"{model.__name__} has no fields {sorted(unknown)} (flags/hide name field paths)")


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, info in model.model_fields.items():
        paths.append(prefix + name)
        inner = _nested_model(info.annotation)
        if inner is not None:
            paths += _field_paths(inner, f"{prefix}{name}.")
    return paths


def _options(
    model: type[BaseModel],
    prefix: tuple[str, ...],
    flags: Mapping[str, Flag],
    hide: set[str],
    nested: str,
) -> list[_Option]:
    options: list[_Option] = []
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        key = ".".join(path)
        if key in hide:
            continue
        inner = _nested_model(info.annotation)
        if inner is not None:
            if nested == "flatten":
                options += _options(inner, path, flags, hide, nested)
            continue
        options.append(_option(model, path, info, flags.get(key, Flag())))
    return options


def _option(model: type[BaseModel], path: tuple[str, ...], info: FieldInfo, flag: Flag) -> _Option:
    key = ".".join(path)
    help_text = flag.help if flag.help is not None else info.description
    if not help_text:
        raise TypeError(
            f"{model.__name__}.{key} has no description: give it Field(description=...) or "
            f"Flag(help=...), or hide it (every flag explains itself in --help)"
        )
    names = flag.names or ("--" + "-".join(path).replace("_", "-"),)
    name = "__".join(path)
    spec_default = None if info.default is PydanticUndefined else info.default
    if flag.sets is not _UNSET:  # a switch: given or not
        option = typer.Option(*names, help=help_text, rich_help_panel=flag.panel)
        return _Option(_param(name, bool | None, None, option), path, flag.sets)
    kind, choices, multiple = _kind(info.annotation, key)
    if kind is bool:
        decls = names if spec_default is not True or flag.names else (f"{names[0]}/--no-{names[0][2:]}",)
        if spec_default is True and flag.default is _UNSET:
            help_text += f" (default {decls[0].split('/')[0]})"
        default = None if flag.default is _UNSET else flag.default
        option = typer.Option(*decls, help=help_text, rich_help_panel=flag.panel)
        return _Option(_param(name, bool | None, default, option), path, _UNSET)
    required = flag.required or (info.is_required() and flag.default is _UNSET)
    shown = flag.default if flag.default is not _UNSET else spec_default
    # Flag(help=...) is the author's whole text, choices included; a field's description gets them added.
    notes = [f"one of: {' | '.join(map(str, choices))}"] if choices and flag.help is None else []
    if not required and shown not in (None, []):
        notes.append(f"default {_show(shown)}")  # the spec's default, though the option's is None
    if notes:
        help_text += f" ({'; '.join(notes)})"
    option = typer.Option(
        *names, help=help_text, metavar=flag.metavar, show_default=False, rich_help_panel=flag.panel
    )
    default = ... if required else (flag.default if flag.default is not _UNSET else None)
    annotation = list[kind] if multiple else kind  # type: ignore[valid-type]
    return _Option(_param(name, annotation if required else annotation | None, default, option), path, _UNSET)


def _param(name: str, annotation: Any, default: Any, option: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[annotation, option]
    )


def _show(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, list | tuple | set):
        return ", ".join(map(str, value))
    return str(value)


def _kind(annotation: Any, key: str) -> tuple[type, tuple[Any, ...], bool]:
    """(click-facing type, allowed values or (), repeatable) for a field's type, ``None`` removed."""
    annotation = _strip_none(annotation)
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        inner, choices, _ = _kind(args[0] if args else str, key)
        return inner, choices, True
    if origin is Literal:
        values = typing.get_args(annotation)
        return type(values[0]), values, False
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = tuple(m.value for m in annotation)
        return type(values[0]), values, False
    if annotation is bool or annotation in _SCALARS:
        return annotation, (), False
    raise TypeError(f"field {key!r}: type {annotation!r} has no command-line form; hide it")


def _strip_none(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    inner = _strip_none(annotation)
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def _put(fields: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        fields = fields.setdefault(part, {})
    fields[path[-1]] = list(value) if isinstance(value, tuple) else value
