"""Settings of one inference server: which hub refs it serves and how it batches them.

The CLI (``fmstack serve``) and Python callers (``create_app(ServeSettings(models=[...]))``) build the
same model, so every limit has one name, one default and one check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fmstack.hub.refs import parse_ref


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1] = 1
    models: list[str] = Field(
        min_length=1, description="Hub refs to serve: ns/name, ns/name:3, ns/name@alias."
    )
    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0 for every interface).")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: pick a free one).")
    max_batch_tokens: int = Field(
        8192, ge=1, description="Token budget of one batch, counted with padding (texts x longest text)."
    )
    max_batch_size: int = Field(64, ge=1, description="Most texts in one batch.")
    # 0.9: on CPU a batch costs its padded tokens plus a fixed part per forward pass; 0.9 cost less CPU
    # per request than 0.75, and 1.0 (batches of ~2 texts of one length) paid more in fixed costs than
    # it saved in padding. The measurements: bench/README.md, serving (batch fill).
    min_batch_fill: float = Field(
        0.9,
        ge=0,
        le=1,
        description="Least share of real (not padding) tokens in a batch; texts of other lengths wait "
        "for a batch of their own (0: batch whatever fits).",
    )
    # 0 (work-conserving): a free compute thread never idles while texts wait. Under load texts queue
    # while the threads compute, so batches fill anyway; at low load waiting only adds latency
    # (measured against 5 ms at several concurrencies: bench/README.md, serving).
    max_wait_ms: float = Field(
        0.0,
        ge=0,
        description="How long a free compute thread waits for more texts before running a smaller batch "
        "(0: run what is queued at once; batches still fill under load, while the threads compute).",
    )
    max_queue: int = Field(2048, ge=1, description="Most texts waiting per model; more are refused with 429.")
    max_inputs: int = Field(2048, ge=1, description="Most texts in one request (413 above).")
    max_body_bytes: int = Field(
        8_000_000, ge=1024, description="Largest request body in bytes, at least 1024 (413 above)."
    )
    max_input_chars: int = Field(
        100_000,
        ge=1,
        description="Longest text in characters, checked before tokenising: a longer one is refused "
        '(413), or cut to this length when the request says "truncate": true.',
    )
    body_timeout_s: float = Field(
        10.0, gt=0, description="How long a client may take to send a request body (408 past it)."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host header values to answer (example.com, *.example.com, localhost); any other "
        "is refused with 421, against DNS rebinding. Empty: any host.",
    )
    request_timeout_s: float = Field(30.0, gt=0, description="Deadline of a request (504 past it).")
    drain_timeout_s: float = Field(
        30.0, ge=0, description="On SIGTERM, how long in-flight requests may finish before exit."
    )
    poll_aliases_s: float = Field(
        5.0, ge=0, description="How often to check served aliases for a new version (0: never)."
    )
    opentelemetry: bool = Field(
        False,
        description="FastAPI's OpenTelemetry spans and metrics, sent to the providers this process "
        "configures (off: FastAPI then skips its per-request provider check; /metrics is always on).",
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="Compute threads per model (default: every core of this machine). An ONNX model "
        "computes up to 2 batches at once and splits each across its share of the threads; PyTorch "
        "splits each batch across all of them.",
    )
    log_predictions: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of classifications to write to the prediction log (0: none, 1: all); any "
        "above 0 also enables POST /v1/feedback. `fmstack monitor report` reads the log.",
    )
    log_dir: Path | None = Field(
        None, description="Folder of the prediction log (default: FMSTACK_HOME/predictions)."
    )
    log_flush_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often the log is written and fsynced: a killed server loses at most this "
        "many seconds of log rows.",
    )
    log_redact_pii: bool = Field(
        False, description="Replace emails, phone and card numbers, IBANs and IPs in logged texts."
    )
    feedback_window_s: float = Field(
        3600.0, gt=0, description="How long after a prediction feedback on it is taken (seconds)."
    )
    api_key_file: Path | None = Field(
        None,
        description="File of API keys, one per line: the key, or sha256: and its hex digest. Every route "
        "but health, metrics and docs then needs 'Authorization: Bearer KEY' (401 otherwise). Re-read "
        "when it changes: edit it to rotate keys without a restart.",
    )

    fallback_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Top score below which /v1/classify answers fallback: true (hand the request to a "
        "human), for every classification model served; overrides the threshold a version carries in "
        "its fmstack.json (set by `fmstack recipe intents`). Default: each version's own, else never.",
    )

    @field_validator("models")
    @classmethod
    def _check_refs(cls, refs: list[str]) -> list[str]:
        for ref in refs:
            parse_ref(ref)  # raises InvalidInput naming the bad ref
        if len(set(refs)) != len(refs):
            raise ValueError(f"a ref is listed twice: {refs}")
        return refs
