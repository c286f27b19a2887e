"""Federated fine-tuning over adapters: the pure parts (aggregation strategies, update validation,
client-level differential privacy, label-skewed partitions) and the client that trains locally with the
training engine and talks to the coordinator over HTTP. The coordinator itself is the hub server's
(``fmstack.server.federation``); nothing here knows about its database."""
