"""YAML spec files a user names on the command line: the one loader of ``fmstack train run``,
``fmstack data process`` and ``fmstack compress --spec``.

It turns a file into the mapping of fields that a spec's pydantic model validates, and refuses
anything else (not UTF-8, not YAML, not a mapping) with a message naming the file. What the fields
mean is each spec's own business: this module knows no spec. It sits outside the layers (like
``textfile``) because data, train and compress all read specs, and none may import another's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from fmstack.errors import InvalidInput, clip
from fmstack.textfile import read_user_text

Spec = TypeVar("Spec")


def read_spec_file(path: Path, what: str) -> dict[str, Any]:
    """The fields of a YAML spec file, not yet validated: a command may lay its flags over them first.

    ``what`` names the spec in messages ("training spec", "processing spec", "compression spec").
    """
    text = read_user_text(path, what)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{clip(path)}: not valid YAML: {clip(exc, 1000)}") from None
    if not isinstance(raw, dict):
        found = "an empty file" if raw is None else f"a YAML {type(raw).__name__}"
        raise InvalidInput(f"{clip(path)}: a {what} is a YAML mapping of field: value, not {found}")
    return raw


def load_spec_file(path: Path, parse: Callable[[dict[str, Any]], Spec], what: str) -> Spec:
    """The spec in a YAML file: its fields through ``parse`` (the spec's ``parse_spec``), which reports
    every problem of the spec at once."""
    return parse(read_spec_file(path, what))
