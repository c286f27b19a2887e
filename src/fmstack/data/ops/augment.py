"""``augment``: EDA (Wei & Zou, 2019) on the train split only: synonym replacement from an offline
lexicon, random insertion, random swap and random deletion. Opt-in; ``multiplier`` is the number
of rows each train row becomes (the original plus ``multiplier - 1`` variants placed after it).

Randomness is seeded per row from (seed, text), so output is the same on any executor and however
the rows are sharded; equal texts get equal variants."""

from __future__ import annotations

import random
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from fmstack.data.lexicon import SYNONYMS
from fmstack.data.ops.base import SPLIT_COLUMN, Context, OpConfig, Stats

Technique = Literal["synonym", "insert", "swap", "delete"]


class AugmentConfig(OpConfig):
    op: Literal["augment"] = "augment"
    multiplier: int = Field(ge=2, le=32)
    alpha: float = Field(default=0.1, gt=0, le=0.5)  # share of words each technique touches
    techniques: list[Technique] = ["synonym", "insert", "swap", "delete"]

    def build(self) -> Augment:
        return Augment(self)


def _synonym(words: list[str], n: int, rng: random.Random) -> list[str]:
    out = list(words)
    candidates = [i for i, w in enumerate(out) if w.lower() in SYNONYMS]
    for i in rng.sample(candidates, min(n, len(candidates))):
        out[i] = rng.choice(SYNONYMS[out[i].lower()])
    return out


def _insert(words: list[str], n: int, rng: random.Random) -> list[str]:
    out = list(words)
    known = [w for w in out if w.lower() in SYNONYMS]
    for _ in range(n if known else 0):
        out.insert(rng.randrange(len(out) + 1), rng.choice(SYNONYMS[rng.choice(known).lower()]))
    return out


def _swap(words: list[str], n: int, rng: random.Random) -> list[str]:
    out = list(words)
    for _ in range(n if len(out) > 1 else 0):
        i, j = rng.randrange(len(out)), rng.randrange(len(out))
        out[i], out[j] = out[j], out[i]
    return out


def _delete(words: list[str], p: float, rng: random.Random) -> list[str]:
    kept = [w for w in words if rng.random() > p]
    return kept or [rng.choice(words)]


def eda(text: str, technique: Technique, alpha: float, rng: random.Random) -> str:
    words = text.split()
    if not words:
        return text
    n = max(1, round(alpha * len(words)))
    if technique == "synonym":
        return " ".join(_synonym(words, n, rng))
    if technique == "insert":
        return " ".join(_insert(words, n, rng))
    if technique == "swap":
        return " ".join(_swap(words, n, rng))
    return " ".join(_delete(words, alpha, rng))


class Augment:
    def __init__(self, config: AugmentConfig) -> None:
        self.config = config

    def apply(self, table: pa.Table, ctx: Context) -> tuple[pa.Table, Stats]:
        c = self.config
        is_train = pc.equal(table.column(SPLIT_COLUMN), "train").to_pylist()
        texts = table.column("text").to_pylist()
        take: list[int] = []
        new_text: list[str] = []
        for i, (text, train) in enumerate(zip(texts, is_train, strict=True)):
            take.append(i)
            new_text.append(text)
            if not train:
                continue
            rng = random.Random(f"{ctx.seed}:{text}")  # str seeds hash with SHA-512: stable
            for _ in range(c.multiplier - 1):
                take.append(i)
                new_text.append(eda(text, rng.choice(c.techniques), c.alpha, rng))
        out = table.take(pa.array(take, pa.int64()))
        out = out.set_column(out.column_names.index("text"), "text", pa.array(new_text, pa.string()))
        return out, {
            "rows_in": table.num_rows,
            "rows_out": out.num_rows,
            "rows_added": out.num_rows - table.num_rows,
        }
