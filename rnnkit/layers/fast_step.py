"""One time step of a recurrent stack for inference: generation's inner loop without the
training machinery.

A layer's ``forward`` on one step pays for what training needs (autograd nodes, the BPTT
workspace, the schedule, a Python loop over layers): about 0.9 ms per layer at batch 1, where the
arithmetic of a 256-unit LSTM layer takes tens of microseconds. :func:`step` runs the same step
without any of it:

- torch's LSTM, GRU and RNN (tanh, relu), and rnnkit's MGU, on CPU in float32/float64: one
  compiled call for the whole stack (``rnnkit/kernels/step.cpp``: per layer the two products
  on the weights as they lie, the weight rows dotted four at a time up to ``SMALL_BATCH`` rows
  and torch's BLAS GEMM above, then the fused element-wise step), new state tensors out;
  :mod:`rnnkit.layers.fast_lm` adds a language model's embedding and output layer to the same
  call (and its sampling loop); at ``torch.get_num_threads() > 1`` the
  call shares each layer's chunks of units with worker threads, where that is measured to pay
  (``rnnkit/kernels/pool.h``; :func:`sharing`), with the one-thread results bit for bit;
- torch's cells elsewhere (CUDA, kernels unavailable or off): torch's fused cell ops
  (``torch.lstm_cell``, ``gru_cell``, ``rnn_tanh_cell``, ``rnn_relu_cell``) layer by layer
  (the MGU there runs ``forward``);
- every other case (other cells, layer norm, zoneout, bidirectional, ``proj_size``, learned
  initial states without a state, training mode, or a step that autograd must record): the
  layer's own ``forward`` on a length-1 sequence, so results and errors are the layer's.

``RNNKIT_FAST_STEP=0`` in the environment (or :func:`disabled` for a block) runs ``forward``
always: the figures before and after, side by side.

The fast paths compute what ``forward`` computes (the same activations as the training kernels;
the tests hold them to 1e-5 in float32 and 1e-12 in float64). They never write into the state
passed in: a caller may keep old states (beam search reorders them).

Shapes: B batch, I input, H hidden, L layers.
"""
import contextlib
import ctypes
import weakref

import torch
import torch.nn.modules.module as nn_module

from rnnkit import env_switch, kernels
from rnnkit.cells import CELLS
from rnnkit.cells.mgu import MGU
from rnnkit.kernels.switch import Switch
from rnnkit.layers.errors import InputError
from rnnkit.layers.inputs import check_weights

KINDS = {"LSTM": 0, "GRU": 1, "RNN_TANH": 2, "RNN_RELU": 3, "MGU": 4}   # step.cpp's Kind
TORCH_CELLS = {"LSTM": torch.lstm_cell, "GRU": torch.gru_cell,
               "RNN_TANH": torch.rnn_tanh_cell, "RNN_RELU": torch.rnn_relu_cell}
SMALL_BATCH = 4    # up to this many rows step.cpp's own loop multiplies, above it the BLAS GEMM
_switch = Switch(not env_switch("RNNKIT_FAST_STEP"))   # off: forward always
_cache = weakref.WeakKeyDictionary()     # layer -> (parameter addresses, pointer array)
_kinds = weakref.WeakKeyDictionary()     # layer -> its KINDS name, or None (fixed at construction)


def disabled():
    """Inside this block :func:`step` runs the layer's ``forward`` (benchmarks, tests)."""
    return _switch.disabled()


@contextlib.contextmanager
def sharing(policy):
    """Inside this block the compiled step shares its work with worker threads (at
    ``torch.get_num_threads() > 1``) as ``policy`` says: "auto" (timed trials of sharing and of
    running alone, the faster kept; the default, or ``RNNKIT_STEP_SHARING``), "always" or
    "never". Results are the same bit for bit under every policy."""
    if policy not in kernels.SHARING:
        raise ValueError(f"policy must be one of {', '.join(kernels.SHARING)}, got {policy!r}")
    k = kernels.get(torch.zeros((), device="cpu"))
    old = k.pool_policy(kernels.SHARING[policy]) if k is not None else None
    try:
        yield
    finally:
        if k is not None:
            k.pool_policy(old)


def fast_kind(rnn):
    """The cell's name in ``KINDS`` where the fast paths can run this layer in its present mode,
    else None (torch.nn's own layers too: a model after rnnkit.to_torch steps them by forward)."""
    if _switch.off or rnn.training or isinstance(rnn, torch.nn.RNNBase) or not _plain(rnn):
        return None
    if rnn not in _kinds:
        _kinds[rnn] = _kind(rnn)
    return _kinds[rnn]


def _plain(rnn):
    """Whether the layer's weights are its own Parameters and nothing runs around its forward:
    a parametrised weight (weight_norm, spectral_norm) is a new tensor at each read, whose
    address the compiled step would keep after it is freed; a forward hook (the old
    weight_norm's recomputes the weight) is run by ``forward`` only."""
    return not (rnn._forward_pre_hooks or rnn._forward_hooks or "parametrizations" in rnn._modules
                or nn_module._global_forward_pre_hooks or nn_module._global_forward_hooks) \
        and all(name in rnn._parameters for name in rnn._flat_weights_names)


def _kind(rnn):
    cell, opt = rnn.cell, rnn.options   # torch's cells exactly (Recurrent("lstm") makes its own)
    mode = next((m for m in TORCH_CELLS if type(cell) is type(CELLS[m])
                 and vars(cell) == vars(CELLS[m])), None)
    if mode is None and type(cell) is MGU and vars(cell) == vars(MGU()):
        mode = "MGU"                    # compiled only (no torch cell op): CPU with the kernels
    if (rnn.bidirectional or rnn.proj_size or opt.layer_norm or any(opt.zoneout)
            or opt.return_sequences != "last"):
        return None
    return mode


def needs_grad(rnn, x, state):
    """Whether autograd would record this step (then only ``forward`` will do)."""
    if not torch.is_grad_enabled():
        return False
    if x.requires_grad or any(p.requires_grad for p in rnn.parameters()):
        return True
    states = state if isinstance(state, tuple) else (state,)
    return any(s is not None and s.requires_grad for s in states)


def step(rnn, x, state=None):
    """One step of ``rnn`` (an rnnkit recurrent layer): x (B, I) -> the top layer's output
    (B, H) and the next state, in the layer's own format ((L, B, H), or (h, c) for the LSTM).
    ``state`` None starts from zeros (or the layer's learned initial state); x (I,) steps an
    unbatched input. A bidirectional layer is refused: its reverse direction starts at the
    sequence's end, which one step cannot know (run ``forward`` on the whole sequence)."""
    try:
        bidirectional = rnn.bidirectional
    except AttributeError:
        raise InputError(f"fast_step.step runs a recurrent layer (rnnkit's, or torch.nn's RNN, "
                         f"LSTM or GRU), got a {type(rnn).__name__}") from None
    if bidirectional:
        raise InputError(f"{type(rnn).__name__}: a bidirectional layer cannot run one step at a "
                         f"time (its reverse direction reads the sequence from its end); run "
                         f"the layer on the whole sequence")
    if not isinstance(x, torch.Tensor) or x.dim() not in (1, 2):
        what = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"{type(rnn).__name__}: a step takes x of shape (batch, "
                         f"{rnn.input_size}) or ({rnn.input_size},), got {what}")
    if x.shape[-1] != rnn.input_size or (x.dim() == 2 and x.shape[0] == 0):
        # said of x here: forward would name the one-step sequence (1, B, I) made of it
        raise InputError(f"{type(rnn).__name__}: a step takes x of shape (batch >= 1, "
                         f"{rnn.input_size}) or ({rnn.input_size},), got {tuple(x.shape)}")
    mode = fast_kind(rnn) if x.dim() == 2 else None
    if mode is not None and not (state is None and rnn.options.learn_init) \
            and not needs_grad(rnn, x, state):
        states = _states(rnn, mode, x.shape, x.dtype, x.device, state)
        if states is not None and real(x, *states):
            k = kernels.get(x)
            ptrs = _pointers(rnn) if k is not None and k.gemm is not None else None
            if ptrs is not None:
                return _compiled(rnn, mode, k, ptrs, x, states)
            if mode in TORCH_CELLS:
                return _torch_cells(rnn, mode, x, states)
    if x.dim() == 1:     # unbatched: a sequence (1, I), whatever batch_first says (torch.nn's rule)
        out, state = rnn(x[None], state)[:2]
        return out[0], state
    seq = x[:, None] if rnn.batch_first else x[None]                           # (B, 1, I)
    out, state = rnn(seq, state)[:2]
    return (out[:, 0] if rnn.batch_first else out[0]), state


def _states(rnn, mode, shape, dtype, device, state):
    """The state for an input of ``shape`` (B, I), ``dtype`` and ``device``, as a tuple of
    contiguous (L, B, H) tensors; None where input or state is not one the fast paths take
    (then ``forward`` checks them and says what is wrong)."""
    L, B, H = rnn.num_layers, shape[0], rnn.hidden_size
    w = rnn.weight_ih_l0
    if shape[1] != rnn.input_size or dtype != w.dtype or device != w.device:
        return None
    n = 2 if mode == "LSTM" else 1
    if state is None:
        return tuple(w.new_zeros(L, B, H) for _ in range(n))
    states = state if isinstance(state, tuple) else (state,)
    if len(states) != n or (n == 1 and not isinstance(state, torch.Tensor)):
        return None
    for s in states:
        if (not isinstance(s, torch.Tensor) or s.shape != (L, B, H) or s.dtype != dtype
                or s.device != device):
            return None
    return tuple(s.contiguous() for s in states)


def real(*tensors):
    """Whether each tensor (or None) holds data at its address: not a FakeTensor (shapes
    without data, as torch.compile and FakeTensorMode make), which says "cpu" and whose
    address the kernels must not read."""
    return all(t is None or type(t) in (torch.Tensor, torch.nn.Parameter) for t in tensors)


def _weights(rnn):
    """Per layer: w_ih, w_hh, b_ih, b_hh (biases None without bias)."""
    return [rnn._weights(layer, 0) for layer in range(rnn.num_layers)]


def _pointers(rnn):
    """The weights' addresses as step.cpp takes them (per layer w_ih, w_hh, b_ih, b_hh; null
    for no bias), or None where one is not contiguous. Cached per layer and rebuilt when any
    parameter moves (``.to()``, a replaced Parameter); updates in place keep the address."""
    named = lambda: [(f"{k}_l{layer}", w) for layer, ws in enumerate(_weights(rnn))
                     for k, w in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), ws)]
    return _addresses(rnn, rnn._parameters.values(), named)


def _addresses(owner, params, named):
    """The pointer array of ``named()`` [(name, weight or None)], cached for ``owner`` under the
    address, shape and strides of each of ``params`` (a view of another shape or strides at the
    same address: a Parameter of the first rows, or a square weight made its own transpose);
    None where one is not a contiguous CPU tensor with data. Each is checked against the
    owner's sizes when the array is made: step.cpp reads it by them."""
    key = tuple(None if p is None else (p.data_ptr(), p.shape, p.stride()) for p in params)
    hit = _cache.get(owner)
    if hit is not None and hit[0] == key:
        return hit[1]
    named = named()
    check_weights(owner, named)
    ws = [w for _, w in named]
    arr = None
    if all(w is None or (w.is_contiguous() and w.device.type == "cpu") for w in ws) \
            and real(*ws):
        arr = (ctypes.c_void_p * len(ws))(*(None if w is None else w.data_ptr() for w in ws))
    _cache[owner] = (key, arr)
    return arr


def _compiled(rnn, mode, k, ptrs, x, states):
    x = x.contiguous()
    out = _call(rnn, mode, k, ptrs, x.shape[0], x.shape[1], x.data_ptr(), states)
    # the output a tensor of its own, as forward's: a view of the state would take an in-place
    # change made to it (out.relu_()) into the next step
    return out[0][-1].clone(), (out if mode == "LSTM" else out[0])


def _call(rnn, mode, k, ptrs, B, I, x, states):
    """step.cpp's stack_step from the input at address x: the new states."""
    return _stack_step(k, mode, rnn.num_layers, rnn.hidden_size, ptrs, B, I, x, states)


def _stack_step(k, mode, L, H, ptrs, B, I, x, states):
    out = tuple(torch.empty_like(s) for s in states)
    c0, c1 = (states[1].data_ptr(), out[1].data_ptr()) if mode == "LSTM" else (None, None)
    k.stack_step(k.gemm, KINDS[mode], L, B, I, H, ptrs, x,
                 states[0].data_ptr(), c0, out[0].data_ptr(), c1, None, None, 0, None, None, 0,
                 None, None, SMALL_BATCH, None, torch.get_num_threads())
    return out


CELL_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
CELL_KINDS = ("LSTM", "GRU")   # cells step.cpp steps faster than torch's op
# (benchmarks/cell_steps.py)


def cell_step(cell, x, hx):
    """One step of an rnnkit ``LSTMCell`` or ``GRUCell`` by step.cpp, for a step autograd does
    not record: x (B, I) and the states hx (each (B, H)) of the weights' dtype, checked by the
    cell. The new states, each (B, H) and a tensor of its own, or None where torch's cell
    operator is as fast (the RNN cell, whose step is one product and a tanh; batches over
    ``SMALL_BATCH``, where step.cpp calls the same GEMM) or where the kernels cannot run it
    (not CPU, another dtype, kernels off, a parametrised weight): the cell then runs that."""
    if cell.mode not in CELL_KINDS or x.shape[0] > SMALL_BATCH or _switch.off:
        return None
    k = kernels.get(x)
    if k is None or k.gemm is None or any(h.device != x.device for h in hx) or not real(x, *hx):
        return None
    ptrs = _cell_pointers(cell)
    if ptrs is None:
        return None
    x = x.contiguous()
    states = tuple(h.contiguous()[None] for h in hx)                        # (1, B, H)
    out = _stack_step(k, cell.mode, 1, cell.hidden_size, ptrs, x.shape[0], x.shape[1],
                      x.data_ptr(), states)
    return tuple(o[0] for o in out)


def _cell_pointers(cell):
    """A cell's weights' addresses as step.cpp takes them (a one-layer stack, :func:`_addresses`);
    None where a weight is not one of the cell's own Parameters (a parametrisation makes a new
    tensor at each read), or one bias of two is missing."""
    ws = [cell._parameters.get(n) for n in CELL_WEIGHTS]
    if ws[0] is None or ws[1] is None or (ws[2] is None) != (ws[3] is None):
        return None
    return _addresses(cell, ws, lambda: list(zip(CELL_WEIGHTS, ws)))


def _torch_cells(rnn, mode, x, states):
    cell, inp, outs = TORCH_CELLS[mode], x, [[] for _ in states]
    for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(_weights(rnn)):
        if mode == "LSTM":
            h, c = cell(inp, (states[0][layer], states[1][layer]), w_ih, w_hh, b_ih, b_hh)
            outs[0].append(h)
            outs[1].append(c)
        else:
            h = cell(inp, states[0][layer], w_ih, w_hh, b_ih, b_hh)
            outs[0].append(h)
        inp = h
    new = tuple(torch.stack(o) for o in outs)
    return inp, (new if mode == "LSTM" else new[0])
