"""``fmstack serve REF [REF ...]``: serve hub models over HTTP with dynamic batching."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from fmstack.cli.output import err_console
from fmstack.cli.remote import open_hub
from fmstack.errors import InvalidInput


def _help(name: str) -> str:
    from fmstack.serve.settings import ServeSettings

    description = ServeSettings.model_fields[name].description or ""
    return description


def _default(name: str) -> Any:
    """The option's default is the setting's: one place to change it."""
    from fmstack.serve.settings import ServeSettings

    return ServeSettings.model_fields[name].default


LOG_LEVELS = ("debug", "info", "warning", "error")
# Settings whose flag is not their name with dashes (the CLI takes seconds without the unit suffix).
_FLAGS = {
    "models": "REF",
    "request_timeout_s": "--request-timeout",
    "drain_timeout_s": "--drain-timeout",
    "body_timeout_s": "--body-timeout",
    "log_flush_s": "--log-flush",
    "feedback_window_s": "--feedback-window",
}


def _flag(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else "?"
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def serve(
    refs: Annotated[
        list[str],
        typer.Argument(
            help="Hub refs to serve: NS/NAME (latest), NS/NAME:VERSION, NS/NAME@ALIAS. "
            "Clients name a model by the ref as given here (or NS/NAME when it is unambiguous)."
        ),
    ],
    host: Annotated[str, typer.Option(help=_help("host"))] = _default("host"),
    port: Annotated[int, typer.Option(help=_help("port"))] = _default("port"),
    max_batch_tokens: Annotated[int, typer.Option(help=_help("max_batch_tokens"))] = _default(
        "max_batch_tokens"
    ),
    max_batch_size: Annotated[int, typer.Option(help=_help("max_batch_size"))] = _default("max_batch_size"),
    min_batch_fill: Annotated[float, typer.Option(help=_help("min_batch_fill"))] = _default("min_batch_fill"),
    max_wait_ms: Annotated[float, typer.Option(help=_help("max_wait_ms"))] = _default("max_wait_ms"),
    max_queue: Annotated[int, typer.Option(help=_help("max_queue"))] = _default("max_queue"),
    max_inputs: Annotated[int, typer.Option(help=_help("max_inputs"))] = _default("max_inputs"),
    max_body_bytes: Annotated[int, typer.Option(help=_help("max_body_bytes"))] = _default("max_body_bytes"),
    max_input_chars: Annotated[int, typer.Option(help=_help("max_input_chars"))] = _default(
        "max_input_chars"
    ),
    body_timeout: Annotated[float, typer.Option(help=_help("body_timeout_s") + " Seconds.")] = _default(
        "body_timeout_s"
    ),
    allowed_hosts: Annotated[
        list[str] | None,
        typer.Option(
            help=_help("allowed_hosts") + " Repeat the option or separate names by commas.",
            metavar="HOST[,HOST...]",
        ),
    ] = None,
    request_timeout: Annotated[float, typer.Option(help=_help("request_timeout_s") + " Seconds.")] = _default(
        "request_timeout_s"
    ),
    drain_timeout: Annotated[float, typer.Option(help=_help("drain_timeout_s") + " Seconds.")] = _default(
        "drain_timeout_s"
    ),
    poll_aliases_s: Annotated[float, typer.Option(help=_help("poll_aliases_s"))] = _default("poll_aliases_s"),
    threads: Annotated[int | None, typer.Option(help=_help("threads"))] = _default("threads"),
    opentelemetry: Annotated[bool, typer.Option(help=_help("opentelemetry"))] = _default("opentelemetry"),
    api_key_file: Annotated[Path | None, typer.Option(help=_help("api_key_file"))] = None,
    log_predictions: Annotated[float, typer.Option(help=_help("log_predictions"), metavar="RATE")] = _default(
        "log_predictions"
    ),
    log_dir: Annotated[Path | None, typer.Option(help=_help("log_dir"))] = None,
    log_flush: Annotated[float, typer.Option(help=_help("log_flush_s") + " Seconds.")] = _default(
        "log_flush_s"
    ),
    log_redact_pii: Annotated[bool, typer.Option(help=_help("log_redact_pii"))] = _default("log_redact_pii"),
    feedback_window: Annotated[float, typer.Option(help=_help("feedback_window_s"))] = _default(
        "feedback_window_s"
    ),
    fallback_threshold: Annotated[float | None, typer.Option(help=_help("fallback_threshold"))] = None,
    log_level: Annotated[str, typer.Option(help="Log level: debug, info, warning or error.")] = "info",
    replicas: Annotated[
        int,
        typer.Option(
            min=1,
            help="Serve processes on this machine behind one HAProxy balancer on --host/--port; each loads "
            "the models and follows aliases on its own, and a request goes to the ready replica with the "
            "fewest in flight (docs/deploy.md).",
        ),
    ] = 1,
) -> None:
    """Serve hub models over HTTP: OpenAI-compatible /v1/embeddings, /v1/classify, KServe v2 /v2/models/...,
    /healthz, /readyz and Prometheus /metrics. Requests are batched per model by a token budget.
    With --log-predictions RATE it logs predictions for `fmstack monitor` and takes POST /v1/feedback.
    An alias ref (NS/NAME@production) follows the hub: when the alias moves, the new version is loaded and
    swapped in without failing requests. SIGTERM drains in-flight requests, then exits 0.

    Example: fmstack serve acme/intent@production fmstack/minilm-l6 --port 8080
    """
    from fmstack.serve import ServeSettings, run
    from fmstack.serve.auth import key_checkers

    try:
        settings = ServeSettings(
            models=refs,
            host=host,
            port=port,
            max_batch_tokens=max_batch_tokens,
            max_batch_size=max_batch_size,
            min_batch_fill=min_batch_fill,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
            max_inputs=max_inputs,
            max_body_bytes=max_body_bytes,
            max_input_chars=max_input_chars,
            body_timeout_s=body_timeout,
            allowed_hosts=[h.strip() for hosts in allowed_hosts or [] for h in hosts.split(",") if h.strip()],
            request_timeout_s=request_timeout,
            drain_timeout_s=drain_timeout,
            poll_aliases_s=poll_aliases_s,
            threads=threads,
            opentelemetry=opentelemetry,
            api_key_file=api_key_file,
            log_predictions=log_predictions,
            log_dir=log_dir,
            log_flush_s=log_flush,
            log_redact_pii=log_redact_pii,
            feedback_window_s=feedback_window,
            fallback_threshold=fallback_threshold,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{_flag(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"bad serve options: {problems}") from None
    if log_level.lower() not in LOG_LEVELS:
        raise InvalidInput(
            f"bad serve options: --log-level {log_level!r}: use one of {', '.join(LOG_LEVELS)}"
        )
    with open_hub() as hub:  # an unknown ref fails here, before the server starts listening
        for ref in refs:
            hub.resolve(ref)
    key_checkers(settings)  # an unusable --api-key-file is refused here, before listening
    if replicas > 1:
        import sys

        from fmstack.serve import replicas as balanced
        from fmstack.settings import Settings

        say = lambda line: err_console.print(line, highlight=False)  # noqa: E731
        home = Settings.from_env().home
        raise typer.Exit(balanced.run(sys.argv[1:], replicas, host, port, request_timeout, home, say))
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    where = f" on http://{host}:{port}" if port else ""
    err_console.print(f"serving {', '.join(refs)}{where} (Ctrl+C or SIGTERM to stop)", highlight=False)
    gauges = _monitor_gauges(settings)
    try:
        run(settings, log_level=log_level, open_hub=open_hub, collectors=[gauges] if gauges else [])
    finally:
        if gauges is not None:
            gauges.stop()


def _monitor_gauges(settings: Any) -> Any:
    """With a prediction log, the monitor's figures (drift, feedback accuracy) as gauges on /metrics."""
    if settings.log_predictions <= 0:
        return None
    from fmstack.monitor.gauges import MonitorGauges
    from fmstack.monitor.logs import log_root
    from fmstack.settings import Settings

    root = log_root(Settings.from_env(), settings.log_dir)
    return MonitorGauges(open_hub, list(settings.models), root, window_s=settings.feedback_window_s).start()
