"""Training tasks, one plugin module each; ``fmstack.train.registry.TASKS`` lists them.

A task module declares everything about the task (``tests/train/test_registry.py`` checks it):

- ``name``; ``metric`` (the evaluation number that picks the best checkpoint) and
  ``higher_is_better``; ``peft_task_type`` (what PEFT calls it, None where PEFT has none);
- ``options``: the ``TrainSpec`` fields only it reads; a spec for another task that sets one away
  from its default is refused (the run would ignore it);
- ``rules(values)``: the problems of a spec that chose it (cross-field checks), as messages;
- ``load_model``, ``encode``, ``finalize``, ``count``, ``collate``, ``outputs``, ``loss``, ``evaluate``:
  building the model, turning rows into batches, the training loss and the metrics.

Like method plugins, task modules import torch, transformers and the modules that load them inside
their functions: the spec checks a command's flags against their declarations before those
libraries load, so a bad flag is refused in a second.
"""
