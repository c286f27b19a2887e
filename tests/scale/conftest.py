"""Scale-out fixtures: the SeaweedFS server of tests/hub (S3) for the multi-node tests."""

from __future__ import annotations

from tests.hub.conftest import seaweed

__all__ = ["seaweed"]
