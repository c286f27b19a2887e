"""Fine-tuning methods, one module each; the registry in ``fmstack.train.registry`` lists them.

Every method module has: ``name``, ``is_adapter`` (output is an adapter version), ``apply(model, spec,
task)`` (make the model trainable the method's way), ``save(model, folder)`` / ``load(model, folder)``
(adapter files) and ``merge(model)``.
"""
