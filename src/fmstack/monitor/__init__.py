"""Learning from production: reading the serve layer's prediction log and feedback, drift scores,
reports, exports of feedback as datasets, and the gated retrain-and-promote loop.

It sits above ``fmstack.serve`` (which writes the log, ``serve.prediction_log``) and reads what serve
writes; it trains, evaluates and compresses through ``fmstack.train`` and ``fmstack.compress``.
"""
