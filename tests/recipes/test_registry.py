"""The contract every recipe keeps: a strict, versioned spec whose every field explains itself (the
CLI's options), and a command that parses into it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmstack.cli import main as cli_main
from fmstack.errors import InvalidInput
from fmstack.hub import Hub
from fmstack.recipes.registry import RECIPES


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_spec_is_strict_versioned_and_documented(name: str) -> None:
    recipe = RECIPES[name]
    fields = recipe.spec.model_fields
    assert recipe.spec.model_config.get("extra") == "forbid" and "schema_version" in fields
    assert all(f.description for n, f in fields.items() if n != "schema_version"), name
    assert recipe.summary and recipe.run.__module__ == f"fmstack.recipes.{name}"
    with pytest.raises(InvalidInput, match="data: Field required.*epochs: Input should be greater"):
        recipe.parse({"epochs": 0})  # every problem at once
    with pytest.raises(InvalidInput, match="colour: Extra inputs are not permitted"):
        recipe.parse({"data": ["x.csv"], "colour": "red"})


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_command_exists_and_refuses_a_missing_file(
    name: str, fmstack_home: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main.main(["recipe", name, "--help"]) == 0
    assert "--data" in capsys.readouterr().out
    assert cli_main.main(["recipe", name, "--data", "/nonexistent.csv"]) == 1
    assert "no such file: /nonexistent.csv" in capsys.readouterr().err
    spec = tmp_path / "recipe.yaml"
    spec.write_text("data: [/elsewhere.csv]\nepochs: 2\n")  # the same fields; a flag overrides
    assert cli_main.main(["recipe", name, "--spec", str(spec)]) == 1
    assert "no such file: /elsewhere.csv" in capsys.readouterr().err
    assert cli_main.main(["recipe", name, "--spec", str(spec), "--epochs", "0"]) == 1
    assert "epochs: Input should be greater than or equal to 1" in capsys.readouterr().err
    with Hub.open() as hub:
        assert hub.ls() == []  # refused before any work: not even the base was imported


def test_the_human_report_shows_metrics_tables_notes_and_the_next_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fmstack.cli.recipe import _show
    from fmstack.recipes.result import RecipeResult

    result = RecipeResult(
        "intents",
        metrics={"threshold": 0.61, "target_met": True},
        tables={"validation_curve": [{"threshold": 0.61, "coverage": 0.9, "accuracy": 0.95}]},
        notes=["[red]not markup[/red]"],
        serve="fmstack serve acme/intents@production",
    )
    _show(result, 12.0)
    out = capsys.readouterr().out
    assert "threshold" in out and "0.6100" in out and "validation_curve" in out and "0.950" in out
    assert "[red]not markup[/red]" in out and "fmstack serve acme/intents@production --port 8000" in out


def test_too_few_rows_for_three_splits_is_refused_before_training(
    fmstack_home: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "few.csv"
    data.write_text("text,label\nhello there,greet\nmy card is lost,card\nhi,greet\n")
    args = ["recipe", "intents", "--data", str(data), "--base", "no/base-needed"]
    with Hub.open() as hub:  # a base exists, so only the data can fail
        hub.push("no/base-needed", _empty_model(tmp_path), "model")
    assert cli_main.main(args) == 1
    assert "has no rows in test" in capsys.readouterr().err
    with Hub.open() as hub:
        assert not [r for r in hub.runs.recent() if r.kind == "train"]


def _empty_model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder
