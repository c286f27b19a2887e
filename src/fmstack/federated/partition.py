"""Label-skewed splits for simulations: each class's rows are spread over the clients by proportions
drawn from Dirichlet(alpha) (Hsu et al. 2019): small alpha, each client sees few classes; large alpha,
close to uniform."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fmstack.errors import InvalidInput


def dirichlet(labels: Sequence[str], clients: int, alpha: float, seed: int = 0) -> list[list[int]]:
    """Row indices per client; every client gets at least one row (redrawn until so, a few times)."""
    if clients < 1 or alpha <= 0:
        raise InvalidInput(f"--clients must be >= 1 and --dirichlet > 0 (got {clients}, {alpha})")
    if len(labels) < clients:
        raise InvalidInput(f"{len(labels)} rows cannot be split over {clients} clients: use fewer clients")
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    for _attempt in range(100):
        parts: list[list[int]] = [[] for _ in range(clients)]
        for label in sorted(by_class):
            rows = np.array(by_class[label])
            rng.shuffle(rows)
            shares = rng.dirichlet([alpha] * clients)
            cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
            for client, chunk in enumerate(np.split(rows, cuts)):
                parts[client].extend(int(i) for i in chunk)
        if all(parts):
            return [sorted(p) for p in parts]
    raise InvalidInput(
        f"Dirichlet({alpha}) left a client without rows: use a larger --dirichlet or fewer clients"
    )
