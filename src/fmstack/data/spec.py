"""The processing spec (``fmstack data process SPEC.yaml``): input, output, seed and ordered ops.
A file is read by ``fmstack.specfile.load_spec_file``, the loader every spec shares.

Parsing reports every problem at once: pydantic collects field errors across all ops, and the
ordering rules below are checked on the same pass, so one run of the command lists them all."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fmstack.data.ops.base import OpConfig
from fmstack.data.ops.registry import OPS
from fmstack.data.shards import DEFAULT_SHARD_ROWS
from fmstack.errors import InvalidInput

if TYPE_CHECKING:
    AnyOp = OpConfig
else:  # a tagged union over the registry: errors name the op and the field
    AnyOp = Annotated[Union[tuple(OPS.values())], Field(discriminator="op")]  # noqa: UP007


class ProcessSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    input: str  # dataset ref, e.g. acme/raw:1
    output: str  # dataset repo for the result, e.g. acme/clean
    seed: int = 0
    shard_rows: int = Field(default=DEFAULT_SHARD_ROWS, ge=1)  # rows per output shard
    ops: list[AnyOp] = Field(min_length=1)

    def canonical(self) -> str:
        """What decides the output bytes (the output name does not), as stable JSON."""
        return json.dumps(self.model_dump(mode="json", exclude={"output"}), sort_keys=True)


def _order_problems(raw_ops: list[Any]) -> list[str]:
    names = [op.get("op") if isinstance(op, dict) else None for op in raw_ops]
    problems = []
    for i, name in enumerate(names):
        if name == "pack" and i != len(names) - 1:
            problems.append(
                f"ops[{i}] (pack): pack must be the last op; it streams finished rows into blocks"
            )
        cls = OPS.get(name) if isinstance(name, str) else None
        if cls is None:
            continue
        try:
            needs = cls.model_validate(raw_ops[i]).needs_tokens()
        except ValidationError:
            needs = name == "pack"
        if needs and "tokenize" not in names[:i]:
            problems.append(f"ops[{i}] ({name}): reads input_ids, so a tokenize op must come before it")
    return problems


def _where(loc: tuple[int | str, ...], raw_ops: list[Any]) -> str:
    if len(loc) >= 2 and loc[0] == "ops" and isinstance(loc[1], int):
        i = loc[1]
        name = raw_ops[i].get("op") if i < len(raw_ops) and isinstance(raw_ops[i], dict) else None
        rest = [str(p) for p in loc[2:] if p != name]
        return f"ops[{i}] ({name})" + (f".{'.'.join(rest)}" if rest else "")
    return ".".join(str(p) for p in loc) or "spec"


def parse_spec(data: Any, origin: str = "spec") -> ProcessSpec:
    if not isinstance(data, dict):
        raise InvalidInput(f"{origin}: expected a mapping with input, output and ops")
    ops_value = data.get("ops")
    raw_ops: list[Any] = ops_value if isinstance(ops_value, list) else []
    problems: list[str] = []
    spec = None
    try:
        spec = ProcessSpec.model_validate(data)
    except ValidationError as exc:
        problems += [f"{_where(tuple(e['loc']), raw_ops)}: {e['msg']}" for e in exc.errors()]
    problems += _order_problems(raw_ops)
    if problems or spec is None:
        known = ", ".join(OPS)
        listing = "\n".join(f"  - {p}" for p in problems)
        raise InvalidInput(f"{origin}: {len(problems)} problem(s):\n{listing}\n(known ops: {known})")
    return spec
