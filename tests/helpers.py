"""Shared test utilities: paired rnnkit / torch.nn layers, a scalar loss over everything,
onnxruntime where the export extra is installed, and the fused kernels where they build."""
import os
import shutil

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

import rnnkit

MODES = {  # name -> (rnnkit class, torch class, extra kwargs)
    "rnn_tanh": (rnnkit.RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (rnnkit.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (rnnkit.LSTM, torch.nn.LSTM, {}),
    "gru": (rnnkit.GRU, torch.nn.GRU, {}),
}


def pair(mode, *args, dtype=torch.float32, **kw):
    """An rnnkit layer and a torch.nn layer with the same weights (copied by state_dict)."""
    ours, theirs, extra = MODES[mode]
    ref = theirs(*args, **extra, **kw).to(dtype)
    mine = ours(*args, **extra, **kw).to(dtype)
    mine.load_state_dict(ref.state_dict())
    return mine, ref


def states(s):
    return s if isinstance(s, tuple) else (s,)


def loss_of(out, state):
    """A loss that weighs every output and final-state element differently."""
    if isinstance(out, PackedSequence):
        out = pad_packed_sequence(out)[0]
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    total = (out * w).sum() + out.pow(2).sum()
    for s in states(state):
        total = total + (s.sin() * torch.linspace(0.5, 1.5, s.numel(), dtype=s.dtype).view_as(s)).sum()
    return total


def onnxruntime_or_skip():
    """The onnxruntime module, or the test skipped where the export extra is not installed."""
    pytest.importorskip("onnx", reason="the export extra is not installed (pip install "
                                       "'rnnkit[export]')")
    pytest.importorskip("onnxscript", reason="the export extra is not installed")
    return pytest.importorskip("onnxruntime", reason="the export extra is not installed")


HAVE_CXX = any(shutil.which(c) for c in (os.environ.get("CXX"), "c++", "g++", "clang++") if c)


def need_kernels():
    """Skip unless the fused CPU kernels are built and loaded."""
    from rnnkit import kernels
    if not kernels.available():
        pytest.skip(f"fused kernels {kernels.status()}")
