"""Fine-tuning methods, one plugin module each; ``fmstack.train.registry.METHODS`` lists them.

A method module declares everything about the method, and nothing else in the package names it:

- ``name``; ``is_adapter`` (the output is an adapter version, else a model version) and
  ``adapter_format`` (``"peft"``: ``PeftModel.from_pretrained`` loads it; ``"fmstack"``; None for
  model versions), recorded in the adapter's ``fmstack_adapter.json``;
- ``tasks``: the tasks it applies to;
- ``default_lr`` and ``default_head_lr`` (the classification head's own rate, None: the same);
- ``options``: its ``TrainSpec`` fields (the CLI groups them under the method in ``--help``);
- ``rules(values)``: the problems of a spec that chose it (cross-field checks), as messages;
- ``flops_per_token(weights, trainable, attention)``: its training FLOPs per token, for the MFU;
- ``training_view(model, rows, eval_rows, collate, device, spec)``: what the loop trains and feeds it
  (the model and the rows, except for the probe, which trains its head on cached features, and
  setfit, which first tunes the encoder contrastively on the rows, then does the same);
- ``apply(model, spec, task)``, ``save(model, folder)``, ``load(model, folder)``, ``merge(model)``.

Where a method does what most do (no rules of its own, a frozen base's FLOPs, training the model on
the rows as given), it assigns the function from ``shared.py`` rather than writing it again.

Plugins import torch, transformers and peft inside their functions (or from a layers module of
their own, like ``bottleneck.py``): the spec checks a command's flags against them before those
libraries load, so a bad flag is refused in a second.
"""
