"""A report's figures as one PNG (matplotlib, without a display): labels against the training data,
confidence against the model's own on held-out data, latency, and accuracy on feedback per label."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fmstack.monitor.report import Report

TOP_LABELS = 20  # the most frequent labels shown; BANKING77 has 77


def save_png(report: Report, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display; set before pyplot is imported
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    fig.suptitle(f"{report.version}: {report.predictions} predictions, {report.feedback.count} feedback")
    _labels(axes[0][0], report)
    _confidence(axes[0][1], report)
    _feedback(axes[1][0], report)
    _drift(axes[1][1], report)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _labels(ax: object, report: Report) -> None:
    shares = report.labels[:TOP_LABELS]
    x = np.arange(len(shares))
    ax.bar(x - 0.2, [s.predicted for s in shares], 0.4, label="predicted")  # type: ignore[attr-defined]
    ax.bar(x + 0.2, [s.training or 0 for s in shares], 0.4, label="training data")  # type: ignore[attr-defined]
    ax.set_xticks(x, [s.label[:18] for s in shares], rotation=60, ha="right", fontsize=7)  # type: ignore[attr-defined]
    ax.set_title(f"labels (top {len(shares)}), label PSI {_num(report.drift.label_psi)}")  # type: ignore[attr-defined]
    ax.legend()  # type: ignore[attr-defined]


def _confidence(ax: object, report: Report) -> None:
    edges = np.linspace(0, 1, 11)
    if report.confidence is not None:
        for counts, name in (
            (report.confidence.histogram, "live"),
            (report.confidence.reference_histogram, "held-out data"),
        ):
            total = sum(counts) or 1
            ax.stairs([c / total for c in counts], edges, label=name)  # type: ignore[attr-defined]
    ax.set_title(f"confidence, PSI {_num(report.drift.confidence_psi)}")  # type: ignore[attr-defined]
    ax.set_xlabel("top score")  # type: ignore[attr-defined]
    ax.legend()  # type: ignore[attr-defined]


def _feedback(ax: object, report: Report) -> None:
    items = sorted(report.feedback.per_label.items(), key=lambda kv: -kv[1].count)[:TOP_LABELS]
    ax.bar(range(len(items)), [v.accuracy for _, v in items])  # type: ignore[attr-defined]
    ax.set_xticks(range(len(items)), [k[:18] for k, _ in items], rotation=60, ha="right", fontsize=7)  # type: ignore[attr-defined]
    ax.set_ylim(0, 1)  # type: ignore[attr-defined]
    ax.set_title(f"accuracy on feedback, overall {_num(report.feedback.accuracy)}")  # type: ignore[attr-defined]


def _drift(ax: object, report: Report) -> None:
    lines = [
        f"predictions {report.predictions} in {report.requests} requests",
        f"latency p50/p95/p99 ms: {_latency(report)}",
        f"label PSI {_num(report.drift.label_psi)} ({report.drift.label})",
        f"confidence PSI {_num(report.drift.confidence_psi)} ({report.drift.confidence})",
    ]
    if report.drift.embedding is not None:
        e = report.drift.embedding
        lines.append(
            f"embedding MMD^2 {e.mmd2:.4f}, p = {e.p_value:.3f} ({'drift' if e.drifted else 'no drift'})"
        )
    lines += report.drift.notes
    ax.axis("off")  # type: ignore[attr-defined]
    ax.text(0, 1, "\n".join(lines), va="top", fontsize=9, family="monospace", wrap=True)  # type: ignore[attr-defined]


def _latency(report: Report) -> str:
    lat = report.latency_ms
    return "n/a" if lat is None else f"{lat.p50:.1f} / {lat.p95:.1f} / {lat.p99:.1f}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
