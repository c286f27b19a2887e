"""The before/after report of a compression, as data (``CompressReport``) and as a card section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Measure(BaseModel):
    """One model's numbers. ``quality`` is in points (accuracy % or cosine-to-parent %), None if unmeasured."""

    model_config = ConfigDict(extra="forbid")
    runtime: str
    size_bytes: int
    latency_b1_ms: float
    latency_b32_ms: float
    quality: float | None = None


class CompressReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    parent: str
    task: Literal["classification", "embedding"]
    metric: Literal["accuracy", "cosine_to_parent", "none"]
    eval_data: str | None = None
    eval_rows: int = 0
    steps: list[str]
    pruning: dict[str, Any] = {}
    fused_ops: dict[str, int] = {}
    before: Measure
    after: Measure
    drop_points: float | None = None
    max_drop_points: float | None = None
    passed: bool = True  # the quality drop is within the limit (or nothing was measured)
    forced: bool = False  # registered although the drop exceeds the limit (--force)
    threads: int = 0

    @property
    def size_ratio(self) -> float:
        return self.after.size_bytes / max(self.before.size_bytes, 1)

    @property
    def speedup_b1(self) -> float:
        return self.before.latency_b1_ms / max(self.after.latency_b1_ms, 1e-9)

    @property
    def speedup_b32(self) -> float:
        return self.before.latency_b32_ms / max(self.after.latency_b32_ms, 1e-9)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _quality(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f}"


def render_markdown(report: CompressReport) -> str:
    """The card body section: what was done, and every number against the parent."""
    b, a = report.before, report.after
    metric = {"accuracy": "accuracy (%)", "cosine_to_parent": "cosine to parent (%)", "none": "quality"}[
        report.metric
    ]
    rows = [
        ("runtime", b.runtime, a.runtime, ""),
        ("file size", _mb(b.size_bytes), _mb(a.size_bytes), f"{report.size_ratio:.2f}x"),
        (
            "latency, batch 1 (ms)",
            f"{b.latency_b1_ms:.2f}",
            f"{a.latency_b1_ms:.2f}",
            f"{report.speedup_b1:.2f}x faster",
        ),
        (
            "latency, batch 32 (ms)",
            f"{b.latency_b32_ms:.1f}",
            f"{a.latency_b32_ms:.1f}",
            f"{report.speedup_b32:.2f}x faster",
        ),
        (
            metric,
            _quality(b.quality),
            _quality(a.quality),
            "" if report.drop_points is None else f"{-report.drop_points:+.2f} points",
        ),
    ]
    table = "\n".join(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in rows)
    evaluated = (
        f"Evaluated on `{report.eval_data}` ({report.eval_rows} rows)."
        if report.eval_data
        else "No eval data was given, so quality was not measured."
    )
    gate = (
        f"Gate: drop {report.drop_points:.2f} points, limit {report.max_drop_points:.2f}: "
        f"{'passed' if report.passed else 'exceeded (registered with --force)'}."
        if report.drop_points is not None and report.max_drop_points is not None
        else ""
    )
    fused = ", ".join(f"{k} x{v}" for k, v in sorted(report.fused_ops.items())) or "none"
    return (
        f"## Compression report\n\nCompressed from `{report.parent}`: {' -> '.join(report.steps)}.\n"
        f"Fused operators: {fused}. Latency: median of timed runs, {report.threads or 'all'} thread(s).\n\n"
        f"| | parent | compressed | change |\n| --- | --- | --- | --- |\n{table}\n\n{evaluated} {gate}\n"
    )
