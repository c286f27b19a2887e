"""Contract over every runtime in ``RUNTIMES``: each serves a classifier and an encoder, gives one row
per text, scores that are probabilities or unit vectors, and answers a text the same alone or padded
in a batch. ONNX and PyTorch exports of the same weights agree."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from fmstack.errors import InvalidInput
from fmstack.servable import read_descriptor
from fmstack.serve.runtimes.base import Runtime
from fmstack.serve.runtimes.registry import RUNTIMES
from tests.serve.conftest import LABELS

FOLDERS = {"onnx": ("classifier-onnx", "encoder-onnx"), "pytorch": ("classifier", "encoder")}
TEXTS = ["hello there", "I want my money back for the order I placed last week", "hi"]


def _load(fmt: str, folder: Path) -> Runtime:
    return RUNTIMES[fmt](folder, read_descriptor(folder), 1)


def test_every_runtime_has_test_models() -> None:
    assert set(FOLDERS) == set(RUNTIMES)


@pytest.mark.parametrize("fmt", sorted(RUNTIMES))
def test_classifier_contract(fmt: str, model_dirs: dict[str, Path]) -> None:
    runtime = _load(fmt, model_dirs[FOLDERS[fmt][0]])
    assert runtime.info.task == "classification"
    assert runtime.info.labels == tuple(LABELS)
    ids = runtime.encode(TEXTS)
    out = runtime.forward(ids)
    assert out.shape == (3, len(LABELS)) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    alone = runtime.forward([ids[2]])  # padding in the batch must not change the answer
    np.testing.assert_allclose(alone[0], out[2], atol=1e-5)
    runtime.close()


@pytest.mark.parametrize("fmt", sorted(RUNTIMES))
def test_encoder_contract(fmt: str, model_dirs: dict[str, Path]) -> None:
    runtime = _load(fmt, model_dirs[FOLDERS[fmt][1]])
    assert runtime.info.task == "embedding"
    assert runtime.info.dimensions == 32
    ids = runtime.encode(TEXTS)
    assert all(seq[0] == 101 and seq[-1] == 102 for seq in ids)  # [CLS] ... [SEP], not truncated
    out = runtime.forward(ids)
    assert out.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(runtime.forward([ids[2]])[0], out[2], atol=1e-5)
    runtime.close()


@pytest.mark.parametrize("fmt", sorted(RUNTIMES))
def test_batches_computed_at_once_answer_like_one_at_a_time(fmt: str, model_dirs: dict[str, Path]) -> None:
    folder = model_dirs[FOLDERS[fmt][1]]
    threads = torch.get_num_threads()  # the PyTorch runtime sets the process-wide count
    try:
        runtime = RUNTIMES[fmt](folder, read_descriptor(folder), 2)
    finally:
        torch.set_num_threads(threads)
    ids = runtime.encode(TEXTS)
    alone = runtime.forward(ids)
    with ThreadPoolExecutor(runtime.info.batches) as pool:
        outs = list(pool.map(lambda _: runtime.forward(ids), range(4 * runtime.info.batches)))
    for out in outs:
        np.testing.assert_allclose(out, alone, atol=1e-6)
    runtime.close()


def test_onnx_and_pytorch_of_the_same_weights_agree(model_dirs: dict[str, Path]) -> None:
    for torch_name, onnx_name in zip(FOLDERS["pytorch"], FOLDERS["onnx"], strict=True):
        reference, exported = _load("pytorch", model_dirs[torch_name]), _load("onnx", model_dirs[onnx_name])
        ids = reference.encode(TEXTS)
        np.testing.assert_allclose(exported.forward(ids), reference.forward(ids), atol=1e-4)


def test_the_onnx_runtime_refuses_a_folder_without_its_descriptor(model_dirs: dict[str, Path]) -> None:
    with pytest.raises(InvalidInput, match="format 'onnx'"):
        RUNTIMES["onnx"](model_dirs["classifier"], None, 1)


def test_the_pytorch_runtime_explains_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no config.json"):
        RUNTIMES["pytorch"](tmp_path, None, 1)
