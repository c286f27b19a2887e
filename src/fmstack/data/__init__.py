"""Datasets: raw files -> validated, versioned, processed training data in the hub.

    from fmstack.data import load
    ds = load("acme/intents:2", split="train")            # a datasets.Dataset
    table = load("acme/intents", split="test", format="arrow")

Ingest (``ingest.py``), processing pipelines (``pipeline.py`` + ``ops/``), executors
(``executors/``) and reading back (``load.py``); the on-disk form is ``format.py``.
"""

from fmstack.data.load import load

__all__ = ["load"]
