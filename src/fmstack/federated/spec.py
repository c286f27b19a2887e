"""The federation spec: one typed model for ``fmstack fed start SPEC.yaml``, the coordinator's record of
the federation, and what each client trains with. Field docs are the reference (docs/federated.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fmstack.errors import InvalidInput, clip
from fmstack.federated import registry
from fmstack.hub.refs import parse_ref, parse_repo

MethodName = Literal["lora", "ia3", "adapter"]


class LocalTraining(BaseModel):
    """What every client runs on its own data each round, with the training engine."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    epochs: int = Field(1, ge=1, description="Local passes over the client's train split per round.")
    max_steps: int | None = Field(None, ge=1, description="Cap on local optimizer steps per round.")
    lr: float | None = Field(None, gt=0, description="Local peak learning rate (default: the method's).")
    batch_size: int = Field(32, ge=1, description="Local batch size.")
    max_length: int = Field(64, ge=8, description="Truncate texts to this many tokens.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Warmup fraction of each local run.")
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha.")
    adapter_size: int = Field(64, ge=1, description="Bottleneck adapter width.")
    seed: int = Field(0, description="Seed of the initial adapter (the same on every client) and data order.")


class DifferentialPrivacy(BaseModel):
    """Client-level DP: clip each client's delta, add Gaussian noise to the mean (DP-FedAvg)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    clip: float = Field(gt=0, description="L2 bound each client's delta is clipped to.")
    noise_multiplier: float | None = Field(
        None, gt=0, description="Noise std / clip; or give target_epsilon and it is computed."
    )
    target_epsilon: float | None = Field(None, gt=0, description="Epsilon to reach after all rounds.")
    delta: float = Field(1e-5, gt=0, lt=1, description="The delta of (epsilon, delta)-DP.")
    population: int = Field(
        ge=1, description="How many clients could take part: sampling rate = clients_per_round / population."
    )

    @model_validator(mode="after")
    def _one_noise(self) -> DifferentialPrivacy:
        if (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise ValueError("give exactly one of noise_multiplier and target_epsilon")
        return self


class FederationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    schema_version: Literal[1] = 1
    name: str = Field(
        description="NS/NAME of the federation; each round's global adapter is a version of it."
    )
    base: str = Field(description="Base model version ref every client fine-tunes (NS/NAME[:N]).")
    task: Literal["classification"] = Field("classification", description="The task clients train.")
    labels: list[str] = Field(
        min_length=2, description="The classes, in order: the same head on every client."
    )
    method: MethodName = Field("lora", description="The adapter clients train (only adapters travel).")
    rounds: int = Field(10, ge=1, description="Rounds to run.")
    clients_per_round: int = Field(2, ge=1, description="Accepted updates that close a round early.")
    min_clients: int = Field(1, ge=1, description="Accepted updates a round needs at its deadline.")
    round_deadline_s: float = Field(
        600.0, gt=0, description="Seconds a round waits; later updates are left out (stragglers)."
    )
    strategy: str = Field("fedavg", description="Aggregation: " + ", ".join(registry.STRATEGIES) + ".")
    mu: float = Field(0.01, ge=0, description="FedProx: weight of the proximal term mu/2 ||w - w_global||^2.")
    server_lr: float = Field(0.01, gt=0, description="FedAdam: the server's learning rate.")
    max_update_norm: float | None = Field(
        100.0, gt=0, description="Reject an update whose delta has a larger L2 norm (None: no bound)."
    )
    eval_data: str | None = Field(
        None, description="Dataset ref the server evaluates each global adapter on."
    )
    eval_split: str = Field("validation", description="Split of eval_data.")
    dp: DifferentialPrivacy | None = Field(None, description="Client-level differential privacy.")
    local: LocalTraining = Field(default_factory=LocalTraining)

    @property
    def prox_mu(self) -> float:
        return self.mu if registry.strategy(self.strategy).proximal else 0.0


def _rules(spec: FederationSpec) -> list[str]:
    problems: list[str] = []
    for field, check in (("name", parse_repo), ("base", parse_ref)):
        try:
            check(getattr(spec, field))
        except InvalidInput as exc:
            problems.append(f"{field}: {exc}")
    if spec.strategy not in registry.STRATEGIES:
        problems.append(f"strategy: unknown {spec.strategy!r} (use one of: {', '.join(registry.STRATEGIES)})")
    if spec.min_clients > spec.clients_per_round:
        problems.append(
            f"min_clients ({spec.min_clients}) is more than clients_per_round ({spec.clients_per_round})"
        )
    if len(set(spec.labels)) != len(spec.labels):
        problems.append("labels: each class once")
    if spec.dp and spec.dp.population < spec.clients_per_round:
        problems.append("dp.population: at least clients_per_round")
    if spec.dp and spec.strategy == "fedadam":
        problems.append("dp: the privacy accounting here covers fedavg/fedprox steps; use one of those")
    return problems


def parse_spec(raw: dict[str, Any]) -> FederationSpec:
    """Validate a spec dict, reporting every problem at once."""
    try:
        spec = FederationSpec.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{clip('.'.join(str(p) for p in e['loc']) or 'spec')}: {e['msg']}" for e in exc.errors()]
        raise InvalidInput(_listed(problems)) from None
    problems = _rules(spec)
    if problems:
        raise InvalidInput(_listed(problems))
    return spec


def _listed(problems: list[str]) -> str:
    return f"the federation spec has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems)
