"""CI's check of the device distribution: ``pip install ./edge`` into a fresh virtualenv without torch
(onnxruntime, tokenizers, numpy and tuf come from PyPI, through pip's cache), then its predictions
equal ``fmstack serve``'s ONNX runtime on the same versions. The virtualenv is built once per module."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fmstack.servable import read_descriptor
from fmstack.serve.runtimes.onnx import load
from tests.edge.conftest import EDGE_SRC

TEXTS = ["ball goal team", "bread soup", "the bank of the loan and cash price very very", "a"]
PROBE = """
import importlib.util, json, sys
from fmstack_edge import Model
absent = [m for m in ("torch", "transformers", "fmstack") if importlib.util.find_spec(m) is None]
texts = json.loads(sys.argv[2])
print(json.dumps({"absent": absent, "outputs": Model(sys.argv[1], threads=1).outputs(texts).tolist()}))
"""


@pytest.fixture(scope="module")
def edge_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("edge-venv") / "venv"
    # No ensurepip in the new environment: this environment's pip installs into it (--python).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # A copy: building writes build/ and *.egg-info next to the sources, which must stay untouched.
    source = shutil.copytree(
        EDGE_SRC.parent,
        venv.parent / "edge",
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, f"pip install ./edge failed: {install.stderr[-3000:]}"
    return python


@pytest.mark.parametrize("name", ["cls", "enc"])
def test_a_fresh_venv_without_torch_predicts_like_fmstack_serve(
    edge_python: Path, versions: dict[str, Path], name: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = subprocess.run(
        [str(edge_python), "-c", PROBE, str(versions[name]), json.dumps(TEXTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["absent"] == ["torch", "transformers", "fmstack"]
    runtime = load(versions[name], read_descriptor(versions[name]), threads=1)
    expected = runtime.forward(runtime.encode(TEXTS))
    # PyPI's newest onnxruntime may differ from this environment's by float rounding.
    assert np.allclose(answer["outputs"], expected, atol=1e-5, rtol=0)
    if name == "cls":
        assert np.array_equal(np.argmax(answer["outputs"], axis=1), expected.argmax(axis=1))
        cli = subprocess.run(
            [str(edge_python.parent / "fmstack-edge"), "predict", str(versions[name]), "ball goal"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert cli.returncode == 0, cli.stderr
        best = runtime.forward(runtime.encode(["ball goal"]))[0].argmax()
        assert json.loads(cli.stdout)[0]["label"] == runtime.info.labels[int(best)]
