"""Training: fine-tuning (probe, full, LoRA, IA3, bottleneck adapters, prefix tuning) and pretraining
(MLM, CLM) of hub models on hub datasets, with every run recorded and every output versioned.

    from fmstack.train.spec import TrainSpec
    from fmstack.train.run import train
    result = train(hub, TrainSpec(base="fmstack/minilm-l6", data="acme/intents", task="classification"))

Layering: uses ``fmstack.hub`` and ``fmstack.data.format``; knows nothing of the CLI or of compress.
"""
