"""Application recipes: one command from a user's own data file to a served model, each step a recorded
run through the same Python API the commands use (ingest, process, train, evaluate, compress).

``intents`` (customer-service intents with a human fallback), ``sentiment`` (imbalanced three-class
sentiment with balanced class weights) and ``search`` (embedding retrieval with a versioned vector
index served by ``/v1/search``). ``registry.RECIPES`` lists them; ``fmstack recipe NAME`` runs one.
"""
