"""FedAvg is the exact example-weighted mean; FedAdam steps on the mean delta."""

from __future__ import annotations

import torch

from fmstack.federated.aggregate import ClientUpdate, delta, fedadam, fedavg, weighted_mean


def test_fedavg_is_the_example_weighted_mean_on_known_tensors() -> None:
    global_ = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([[0.0]])}
    locals_ = [
        ({"a": torch.tensor([2.0, 2.0]), "b": torch.tensor([[3.0]])}, 1),
        ({"a": torch.tensor([1.0, 5.0]), "b": torch.tensor([[-1.0]])}, 3),
    ]
    updates = [ClientUpdate(delta(w, global_), n) for w, n in locals_]
    out = fedavg(global_, updates)
    # a: [1,2] + (1*[1,0] + 3*[0,3]) / 4 = [1.25, 4.25]; b: (1*3 + 3*-1) / 4 = 0
    assert torch.equal(out["a"], torch.tensor([1.25, 4.25]))
    assert torch.equal(out["b"], torch.tensor([[0.0]]))
    assert out["a"].dtype == torch.float32


def test_equal_weights_ignore_example_counts() -> None:
    updates = [ClientUpdate({"w": torch.tensor([4.0])}, 100), ClientUpdate({"w": torch.tensor([0.0])}, 1)]
    assert torch.equal(weighted_mean(updates, equal_weights=True)["w"], torch.tensor([2.0]))


def test_fedadam_moves_each_coordinate_by_about_the_server_lr_first() -> None:
    global_ = {"w": torch.zeros(3)}
    mean = {"w": torch.tensor([0.5, -0.5, 0.0])}
    out, state = fedadam(global_, mean, None, lr=0.1, tau=1e-9)
    # m = 0.1 d, v = 0.01 d^2: step = lr * 0.1 d / (0.1 |d|) = lr * sign(d)
    assert torch.allclose(out["w"], torch.tensor([0.1, -0.1, 0.0]), atol=1e-6)
    again, _ = fedadam(out, mean, state, lr=0.1, tau=1e-9)
    assert float(again["w"][0]) > 0.1
