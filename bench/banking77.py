"""Where the benchmarks find BANKING77: one ``--data DIR`` flag whose default is found relative to this
repository (``<repo>/../shared/datasets/banking77``), so anyone runs them with their own copy. A folder
without ``train.csv`` makes the benchmark skip with a message, never fail."""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "datasets" / "banking77"


def add_data_flag(parser: argparse.ArgumentParser, *aliases: str) -> None:
    parser.add_argument(
        "--data",
        *aliases,
        dest="data",
        type=Path,
        default=DEFAULT,
        help="BANKING77 folder with train.csv, test.csv and categories.json (default: %(default)s)",
    )


def missing(folder: Path) -> str | None:
    """Why ``folder`` cannot serve as BANKING77 (None when it can)."""
    if not (folder / "train.csv").is_file():
        return f"{folder} has no train.csv (BANKING77 CSVs needed; pass --data DIR)"
    return None
