"""Staged rollout: which devices take a bundle published to a percentage of the fleet."""

from __future__ import annotations

import hashlib


def bucket(device_id: str, channel: str) -> int:
    """The device's place in 0..99 on this channel: a hash, so the same devices go first each time and
    a larger percentage keeps those that already updated."""
    digest = hashlib.sha256(f"{channel}\0{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def eligible(device_id: str, channel: str, rollout: int) -> bool:
    return bucket(device_id, channel) < rollout
