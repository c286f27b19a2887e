"""The pure batching rules: token budgets, length grouping, no starvation, wait times, dead items."""

from __future__ import annotations

from dataclasses import dataclass

from fmstack.serve.batching import Limits, next_batch, padded_tokens, split_dead, wait_time


@dataclass
class P:
    length: int
    arrival: float = 0.0
    deadline: float = 100.0
    dropped: bool = False


def test_padded_tokens_counts_the_longest_for_every_text() -> None:
    assert padded_tokens([3, 10, 4]) == 30
    assert padded_tokens([]) == 0


def test_next_batch_takes_the_oldest_and_groups_similar_lengths() -> None:
    pending = [P(10), P(200), P(11), P(9), P(190), P(12)]
    batch = next_batch(pending, Limits(max_tokens=60, max_size=8, max_wait_s=0))
    assert [p.length for p in batch] == [9, 10, 11, 12]  # shortest first; the 190/200 ones wait
    assert padded_tokens([p.length for p in batch]) <= 60


def test_next_batch_respects_max_size_and_prefers_older_among_equal_lengths() -> None:
    pending = [P(5, arrival=i) for i in range(10)]
    batch = next_batch(pending, Limits(max_tokens=10_000, max_size=4, max_wait_s=0))
    assert [p.arrival for p in batch] == [0, 1, 2, 3]


def test_the_oldest_text_goes_even_when_it_alone_is_over_budget() -> None:
    pending = [P(500), P(5)]
    batch = next_batch(pending, Limits(max_tokens=100, max_size=8, max_wait_s=0))
    assert [p.length for p in batch] == [500]


def test_a_long_text_is_not_starved_by_a_stream_of_short_ones() -> None:
    limits = Limits(max_tokens=64, max_size=8, max_wait_s=0)
    queue = [P(60, arrival=0)] + [P(4, arrival=i) for i in range(1, 20)]
    first = next_batch(queue, limits)
    assert [p.length for p in first] == [60]


def test_next_batch_of_nothing_is_empty() -> None:
    assert next_batch([], Limits(10, 10, 0)) == []


def test_wait_time_is_zero_for_a_full_batch_and_counts_down_the_oldest_wait() -> None:
    limits = Limits(max_tokens=100, max_size=3, max_wait_s=0.5)
    assert wait_time([], limits, now=1.0) == float("inf")
    assert abs(wait_time([P(1, arrival=1.0)], limits, now=1.2) - 0.3) < 1e-9
    assert wait_time([P(1, arrival=1.0)], limits, now=2.0) == 0.0
    assert wait_time([P(1, arrival=1.0)] * 3, limits, now=1.0) == 0.0  # max_size reached
    assert wait_time([P(60, arrival=1.0), P(40, arrival=1.0)], limits, now=1.0) == 0.0  # token budget


def test_split_dead_separates_expired_and_dropped_in_order() -> None:
    alive1, late, gone, alive2 = P(1, deadline=5), P(2, deadline=1), P(3, dropped=True), P(4, deadline=9)
    alive, expired, dropped = split_dead([alive1, late, gone, alive2], now=2.0)
    assert alive == [alive1, alive2]
    assert expired == [late]
    assert dropped == [gone]


def test_min_fill_keeps_a_batch_from_being_mostly_padding() -> None:
    pending = [P(10), P(11), P(40), P(9), P(12)]
    batch = next_batch(pending, Limits(max_tokens=10_000, max_size=8, max_wait_s=0, min_fill=0.75))
    assert [p.length for p in batch] == [9, 10, 11, 12]  # the 40-token text waits for its own batch
    everything = next_batch(pending, Limits(max_tokens=10_000, max_size=8, max_wait_s=0, min_fill=0.0))
    assert len(everything) == 5
    lengths = [p.length for p in batch]
    assert sum(lengths) >= 0.75 * padded_tokens(lengths)
