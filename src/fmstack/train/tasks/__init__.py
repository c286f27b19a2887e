"""Training tasks, one module each; the registry in ``fmstack.train.registry`` lists them."""
