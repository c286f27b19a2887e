"""``spec_options``: a pydantic model's fields become Typer options, and the options a dict of fields."""

from __future__ import annotations

import enum
from typing import Any, Literal

import pytest
import typer
from pydantic import BaseModel, ConfigDict, Field
from typer.testing import CliRunner

from fmstack.cli.spec_options import Flag, spec_options


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Inner(BaseModel):
    depth: int = Field(2, description="How deep.")


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    name: str = Field(description="What to call it.")
    batch_size: int = Field(32, description="Examples per batch.")
    lr: float | None = Field(None, description="Learning rate.")
    mode: Literal["fast", "exact"] = Field("fast", description="How to run.")
    colour: Colour = Field(Colour.RED, description="Its colour.")
    tags: list[str] = Field(default_factory=list, description="Labels to attach.")
    compile: bool = Field(False, description="Compile first.")
    bucket: bool = Field(True, description="Bucket by length.")
    per_channel: bool = Field(True, description="One scale per channel.")
    inner: Inner = Field(default_factory=Inner, description="Nested options.")


def _app(**kwargs: Any) -> tuple[typer.Typer, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    app = typer.Typer()

    @app.command()
    @spec_options(Spec, hide={"schema_version"}, **kwargs)
    def run(fields: dict[str, Any], verbose: bool = typer.Option(False, "--verbose")) -> None:
        """Run the spec."""
        seen.append({**fields, "_verbose": verbose})

    return app, seen


def _invoke(app: typer.Typer, *args: str) -> Any:
    # COLUMNS only: typer reads TERMINAL_WIDTH once, when typer.rich_utils is first imported, so setting it
    # here would fix every later help's width in this process (and wrap other tests' help texts).
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_only_the_flags_given_reach_the_fields_so_the_spec_keeps_its_defaults() -> None:
    app, seen = _app()
    assert _invoke(app, "--name", "x").exit_code == 0
    assert seen[-1] == {"name": "x", "_verbose": False}
    result = _invoke(
        app, "--name", "x", "--batch-size", "8", "--lr", "1e-3", "--mode", "exact", "--colour", "blue",
        "--tags", "a", "--tags", "b", "--compile", "--no-bucket", "--verbose",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen[-1] == {
        "name": "x",
        "batch_size": 8,
        "lr": 1e-3,
        "mode": "exact",
        "colour": "blue",
        "tags": ["a", "b"],
        "compile": True,
        "bucket": False,
        "_verbose": True,
    }
    Spec.model_validate({k: v for k, v in seen[-1].items() if k != "_verbose"})  # the spec takes them


def test_help_has_each_fields_description_default_and_choices() -> None:
    app, _ = _app()
    out = _invoke(app, "--help").output
    for text in (
        "What to call it.",
        "Examples per batch.",
        "(default 32)",
        "one of: fast | exact",
        "one of: red | blue",
    ):
        assert text in out
    assert "--no-bucket" in out and "(default --bucket)" in out and "--no-compile" not in out
    assert "--schema-version" not in out and "--inner" not in out  # hidden; nested skipped by default
    assert "--verbose" in out  # the command's own options stay


def test_required_fields_are_required_options() -> None:
    app, seen = _app()
    result = _invoke(app, "--batch-size", "2")
    assert result.exit_code != 0 and "--name" in result.output and not seen


def test_flags_rename_set_values_change_defaults_and_help() -> None:
    app, seen = _app(
        flags={
            "batch_size": Flag("--batch-size", "-b"),
            "name": Flag("--title", default="untitled", help="The title."),
            "per_channel": Flag("--per-tensor", sets=False, help="One scale per tensor."),
            "mode": Flag("--exact", sets="exact", help="Exact mode.", panel="Modes"),
        }
    )
    assert _invoke(app, "-b", "4", "--per-tensor", "--exact").exit_code == 0
    assert seen[-1] == {
        "name": "untitled",
        "batch_size": 4,
        "per_channel": False,
        "mode": "exact",
        "_verbose": False,
    }
    assert _invoke(app).exit_code == 0
    assert seen[-1] == {"name": "untitled", "_verbose": False}
    out = _invoke(app, "--help").output
    assert "The title." in out and "--name" not in out and "--per-channel" not in out
    assert "─ Modes ─" in out


def test_nested_fields_can_be_flattened() -> None:
    app, seen = _app(nested="flatten")
    assert _invoke(app, "--name", "x", "--inner-depth", "5").exit_code == 0
    assert seen[-1] == {"name": "x", "inner": {"depth": 5}, "_verbose": False}
    Spec.model_validate({k: v for k, v in seen[-1].items() if k != "_verbose"})


def test_a_field_without_description_or_an_unknown_key_is_a_programming_error() -> None:
    class Bare(BaseModel):
        undocumented: int = 1

    with pytest.raises(TypeError, match="Bare.undocumented has no description"):
        spec_options(Bare)
    with pytest.raises(TypeError, match="no fields"):
        spec_options(Spec, hide={"nope"})
    assert spec_options(Bare, flags={"undocumented": Flag(help="Now explained.")})
