"""What a recipe returns: the versions it made, its measurements and how long each step took."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fmstack.hub import VersionInfo

Say = Callable[[str, float | None], None]  # (step, None) when a step starts, (step, seconds) when it ends


@dataclass
class RecipeResult:
    recipe: str
    versions: dict[str, VersionInfo] = field(default_factory=dict)  # step -> version it made
    metrics: dict[str, Any] = field(default_factory=dict)  # name -> value (test numbers: "test_...")
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # e.g. the coverage curve
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall time
    notes: list[str] = field(default_factory=list)  # what the user should know (a target not met, ...)
    serve: str = ""  # the command that serves the result
