"""Inference runtimes: turn a model version's folder into ``texts -> vectors``.

Each runtime owns tokenisation and one forward pass over a padded batch; batching, queues and HTTP
live above it and know nothing of ONNX or torch. ``registry.RUNTIMES`` maps a format to its loader.
"""
