"""A language model's step and sampling loop in one compiled call each: the embedding, the
stack of :mod:`rnnkit.layers.fast_step` and the output layer (``rnnkit/kernels/step.cpp``'s
lm_step and lm_sample), where the model can run so (eval mode, torch's cells or the MGU on CPU,
an ``nn.Embedding`` and an ``nn.Linear`` head); callers fall back to :func:`fast_step.step`
between the model's own embedding and head otherwise.

Per token the model last stepped is recognised by identity and its parameters' addresses (a
moved or replaced parameter makes a new :class:`_LMPlan`); the arguments that stay from token
to token lie in the plan's ``fixed`` array, and at two threads or more the workers compute the
next step's layer-0 product while Python runs (step.cpp; the storage it reads is kept in
``_reading``).

Shapes: B batch, V vocabulary, L layers, H hidden.
"""
import atexit
import ctypes
import itertools
import operator
import threading
import weakref
import zlib

import torch
import torch.nn.modules.module as nn_module
from torch.optim.optimizer import register_optimizer_step_post_hook

from rnnkit import kernels
from rnnkit.layers.fast_step import (KINDS, SMALL_BATCH, _pointers, _states, _switch, fast_kind,
                                     needs_grad, real)

_lm_cache = weakref.WeakKeyDictionary()  # layer -> (addresses, lm_step plan)


def lm_step(rnn, embed, head, ids, state):
    """A language model's whole step in one call, where it can run so: ids (B,) ->
    logits = head(rnn(embed(ids))) (B, V) and the next state; None where it cannot (then
    use :func:`step` between the model's own embedding and head). ``embed`` an
    ``nn.Embedding`` (no ``max_norm``), ``head`` an ``nn.Linear``."""
    plan = _lm_ready(rnn, embed, head, ids, state)
    if plan is None:
        return None
    B, lstm = ids.shape[0], plan.lstm
    if state is not None and state is plan.last and B == plan.last_b:    # checked last step
        states = state if lstm else (state,)
    else:
        states = _states(rnn, plan.mode, (B, plan.I), plan.dtype, plan.device, state)
        if states is None:
            return None
    ids = ids.contiguous()
    h0, L, H = states[0], plan.L, plan.H      # (new_empty on ints: the quickest allocation)
    out = (h0.new_empty(L, B, H), h0.new_empty(L, B, H)) if lstm else (h0.new_empty(L, B, H),)
    logits = h0.new_empty(B, plan.V)
    c0, c1 = (states[1].data_ptr(), out[1].data_ptr()) if lstm else (None, None)
    status = ctypes.c_int64()
    plan.table_tensor()                   # brought up to date (its address is in plan.fixed)
    # the arguments that stay lie in plan.fixed: the per-token call passes ten
    plan.k.lm_step(plan.fixed, B, h0.data_ptr(), c0, out[0].data_ptr(), c1, ids.data_ptr(),
                   logits.data_ptr(), ctypes.byref(status), torch.get_num_threads(), plan.serial,
                   plan.w_hh0._version + _optimizer_steps[0])
    if _reading[0] is not None and _reading[0] is not plan.w_hh0_storage:
        plan.k.lm_settle()   # another model's products computed ahead: finished before its
    _reading[0] = plan.w_hh0_storage      # storage is let go (a step that posts none, at B > 4,
    # one thread or an MGU, settles none); what this step's read is kept
    if status.value:
        _bad_id(ids, status.value - 1, plan.n_emb)
    new = out if lstm else out[0]
    plan.last, plan.last_b = new, B       # the next step's state, most likely: known good
    return logits, new


def lm_sample(rnn, embed, head, logits, state, u, temperature, top_k, top_p, stop_id, done):
    """Sampling's inner loop for a language model in one call, where it can run so: for each
    row of ``u`` (n, B) (uniform draws in [0, 1), float64) a token per sequence from ``logits``
    (B, V) as :func:`rnnkit.decode.sampling.pick` draws it, then the model's step from it, as
    :func:`rnnkit.decode.sampling.sample` does. ``done`` (B,) bool: the rows that have emitted
    ``stop_id`` (None: no stop token); the loop ends early once every row is done. Returns
    (tokens (n', B), logits (B, V), state, done), n' <= n, or None where it cannot run (then
    step with :func:`lm_step` and pick in Python)."""
    plan = _lm_ready(rnn, embed, head, logits, state, check_ids=False)
    if plan is None or logits.dim() != 2 or logits.shape[1] != plan.V \
            or logits.dtype != plan.dtype or logits.device != plan.device:
        return None
    B, n = logits.shape[0], u.shape[0]
    states = _states(rnn, plan.mode, (B, plan.I), plan.dtype, plan.device, state)
    if states is None or u.shape != (n, B) or u.dtype != torch.float64:
        return None
    states = tuple(s.clone() for s in states)             # replaced in place by the kernel
    logits, u = logits.clone(), u.contiguous()
    done = (torch.zeros(B, dtype=torch.long, device="cpu") if done is None
            else done.long()).contiguous()
    out = torch.empty(n, B, dtype=torch.long, device="cpu")
    status = (ctypes.c_int64 * 2)()
    lstm = plan.mode == "LSTM"
    k = plan.k
    k.lm_sample(gemm=k.gemm, kind=plan.kind, L=plan.L, B=B, I=plan.I, H=plan.H, w=plan.ptrs,
                emb=plan.ew, n_emb=plan.n_emb, w_out=plan.hw, b_out=plan.hb, V=plan.V,
                table=plan.table_tensor(), n=n, u=u, temperature=float(temperature),
                top_k=int(top_k or 0), top_p=float(top_p or 0.0),
                stop_id=-1 if stop_id is None else int(stop_id), logits=logits, h=states[0],
                c=states[1] if lstm else None, done=done, out=out, status=status,
                small_b=SMALL_BATCH, threads=torch.get_num_threads())
    taken = status[0]
    if status[1]:
        _bad_id(out[taken - 1], status[1] - 1, plan.n_emb)
    return (out[:taken], logits, (states if lstm else states[0]),
            None if stop_id is None else done.bool())


def refresh(rnn, embed, head):
    """Before a run of steps (:func:`rnnkit.decode.sample` calls it through the model): where
    these modules have a plan, check their weights' bytes against the last check
    (:meth:`_LMPlan.verify`), so a write through ``.data`` since is seen."""
    if _switch.off or rnn.training or not (isinstance(embed, torch.nn.Embedding)
                                           and isinstance(head, torch.nn.Linear)):
        return
    params = (*rnn.parameters(), *embed.parameters(), *head.parameters())
    if not all(p.is_contiguous() for p in params):   # e.g. a square weight's ``.data = w.t()``:
        _lm_cache.pop(rnn, None)                       # at its address with its shape, but read
        _hot[0] = None                                 # as another matrix: a plan made anew
    plan = _lm_plan(rnn, embed, head)
    if plan is not None:
        plan.verify()


def _bad_id(ids, r, n_emb):
    raise IndexError(f"token id {int(ids[r])} at batch row {r} is outside the vocabulary "
                     f"[0, {n_emb})")


def _lm_ready(rnn, embed, head, x, state, check_ids=True):
    """The :class:`_LMPlan` of these modules where one compiled call can run their step on
    ``x`` (ids, or logits for :func:`lm_sample`) and ``state``; else None."""
    if (_switch.off or rnn.training or embed.training or head.training or not x.is_cpu
            or (check_ids and (x.dim() != 1 or x.dtype != torch.long))):
        return None
    if not _plain(embed, head) or not real(x, embed._parameters["weight"],
                                           head._parameters["weight"]):
        return None             # (a FakeTensor: no data at its address)
    plan = _lm_plan(rnn, embed, head)
    if plan is None or (state is None and plan.learn_init) or (torch.is_grad_enabled() and (
            needs_grad(rnn, x, state) or plan.ew.requires_grad
            or any(p.requires_grad for p in head.parameters()))):
        return None
    return plan


def _plain(embed, head):
    """Whether the embedding and head are their own Parameters with nothing around their
    forward: a hook (a global one too), a parametrisation or pruning (its mask applied by a
    pre-hook) runs in ``forward`` only, and a parametrised weight is a new tensor at each read.
    (Per token: spelled out, no call per module.)"""
    return not (embed._forward_pre_hooks or embed._forward_hooks or head._forward_pre_hooks
                or head._forward_hooks or nn_module._global_forward_pre_hooks
                or nn_module._global_forward_hooks or "parametrizations" in embed._modules
                or "parametrizations" in head._modules) \
        and "weight" in embed._parameters and "weight" in head._parameters


# The optimizer steps taken in this process, from torch's global post-step hook (registered
# with the first plan): a fused optimizer (AdamW(fused=True), rnnkit's own on CPU) writes the
# weights without a version counter's bump, so the table and the products computed ahead
# count both.
_optimizer_steps, _counting = [0], [None]


def _count_step(optimizer, args, kwargs):
    _optimizer_steps[0] += 1


class _LMPlan:
    """What the compiled LM calls take for one (stack, embedding, head): addresses and sizes,
    and layer 0's input table (token -> b_ih + emb W_ih^T), rebuilt when those weights change
    and only where it is small (``TABLE_BYTES``)."""
    TABLE_BYTES = 8 << 20

    def __init__(self, k, rnn, mode, embed, head, ptrs, key):
        if _counting[0] is None:
            _counting[0] = register_optimizer_step_post_hook(_count_step)
        ew, hw, hb = embed.weight, head.weight, head.bias
        self.k, self.ptrs, self.mode, self.kind = k, ptrs, mode, KINDS[mode]
        self.key, self.lstm, self.learn_init = key, mode == "LSTM", rnn.options.learn_init
        self.serial, self.w_hh0 = next(_serials), rnn.weight_hh_l0   # (step.cpp's speculation)
        self.w_hh0_storage = self.w_hh0.untyped_storage()
        self.L, self.H, self.I = rnn.num_layers, rnn.hidden_size, ew.shape[1]
        self.ew, self.hw, self.hb = ew, hw, hb               # by-name calls take the tensors
        self.emb, self.n_emb = ew.data_ptr(), ew.shape[0]
        self.w_out, self.b_out = hw.data_ptr(), None if hb is None else hb.data_ptr()
        self.V, self.dtype, self.device = hw.shape[0], ew.dtype, ew.device
        gates = {"LSTM": 4, "GRU": 3, "MGU": 2}.get(mode, 1) * self.H
        b_ih = getattr(rnn, "bias_ih_l0", None)
        self._sources = (ew, rnn.weight_ih_l0) + (() if b_ih is None else (b_ih,))
        # their storages stay referenced: a Parameter given new data (``p.data = ...``) keeps
        # its version counter, and new data at the freed old address would pass for the table's
        self._source_storages = tuple(t.untyped_storage() for t in self._sources)
        self._table, self._versions, self._sums, self._steps = None, None, None, None
        self._rebuilding = threading.Lock()
        self.last, self.last_b = None, 0                     # the state lm_step returned last
        if self.n_emb * gates * ew.element_size() <= self.TABLE_BYTES:
            self._table = ew.new_empty(self.n_emb, gates)
        self.fixed = k.lm_step_fixed(
            gemm=k.gemm, kind=self.kind, L=self.L, I=self.I, H=self.H, w=ptrs, emb=self.emb,
            n_emb=self.n_emb, w_out=self.w_out, b_out=self.b_out, V=self.V,
            small_b=SMALL_BATCH, table=None if self._table is None else self._table.data_ptr())

    def verify(self):
        """Catch what the version counters cannot: a write through ``.data`` (which has a
        counter of its own) to the table's weights or layer 0's W_hh. A checksum of their bytes
        (a millisecond or so for a character model; taken once per :func:`refresh`, not per
        token) that differs from the last one drops the table and the products computed
        ahead."""
        sums = tuple(zlib.crc32(t.detach().contiguous().numpy())   # (a view with other strides)
                     for t in self._sources + (self.w_hh0,))
        if sums != self._sums:
            self._versions, self._sums = None, sums       # the table is rebuilt at next use,
            self.serial = next(_serials)                  # and no step takes the products

    def table_tensor(self):
        """The table, brought up to date (None where there is none)."""
        if self._table is None:
            return None
        if [t._version for t in self._sources] != self._versions \
                or self._steps != _optimizer_steps[0]:
            with self._rebuilding:    # two threads' rebuilds interleaved their fill and sums
                versions, steps = [t._version for t in self._sources], _optimizer_steps[0]
                if versions != self._versions or steps != self._steps:
                    self.k.input_table(kind=self.kind, I=self.I, H=self.H, w=self.ptrs,
                                       emb=self.ew, n_emb=self.n_emb, table=self._table)
                    self._versions, self._steps = versions, steps
        return self._table


_serials = itertools.count()     # a number per plan: which model a step continues
# After a step at two threads or more, workers compute layer 0's h W_hh^T for the next one
# (step.cpp): the storage they read stays referenced here until the next lm_step, which waits
# for them first, so a model deleted (or a weight replaced) in between is never read freed.
_reading = [None]


@atexit.register
def _settle():
    """Products computed ahead are finished before the interpreter frees the weights."""
    k = kernels.loaded()
    if k is not None:
        k.lm_settle()


_hot = [None]    # weak references to (rnn, embed, head, plan) last used: the per-token check


def _addresses(rnn, embed, head):
    """Where every parameter of the three modules lies now and its shape (a Parameter of the
    first rows of another lies where it did; None for an absent one). Not its strides, which
    cost as much again a token: a square weight given its own transpose through ``.data`` is
    seen by :func:`refresh`, as other writes through ``.data`` are."""
    params = (*rnn._parameters.values(), *embed._parameters.values(),
              *head._parameters.values())
    try:
        return (*map(torch.Tensor.data_ptr, params), *map(_SHAPE, params))
    except TypeError:                                   # a None parameter: the head's bias
        return tuple(None if p is None else (p.data_ptr(), p.shape) for p in params)


_SHAPE = operator.attrgetter("shape")


def _lm_plan(rnn, embed, head):
    """The :class:`_LMPlan` for these three modules, or None where they cannot run as one
    call. Cached per layer, rebuilt when a parameter moves (a new address: ``.to()``, a
    replaced Parameter or ``.data``)."""
    if fast_kind(rnn) is None:   # training, switched off, a parametrised weight or a hook
        return None
    hot = _hot[0]
    if hot is not None and hot[0]() is rnn and hot[1]() is embed and hot[2]() is head:
        plan = hot[3]()
        if plan is not None and plan.key == _addresses(rnn, embed, head):
            return plan
    if not (isinstance(embed, torch.nn.Embedding) and isinstance(head, torch.nn.Linear)):
        return None
    key = (id(embed), id(head)) + _addresses(rnn, embed, head)
    hit = _lm_cache.get(rnn)
    if hit is not None and hit[0] == key:
        plan = hit[1]
    else:
        plan = _new_plan(rnn, embed, head, key[2:])
        _lm_cache[rnn] = (key, plan)
    if plan is not None:
        _hot[0] = tuple(map(weakref.ref, (rnn, embed, head, plan)))
    return plan


def _new_plan(rnn, embed, head, key):
    ew, hw, hb = embed.weight, head.weight, head.bias
    k, ptrs, w = kernels.get(ew), _pointers(rnn), rnn.weight_ih_l0
    mode = fast_kind(rnn)
    inference = any(p.is_inference() for m in (rnn, embed, head) for p in m.parameters())
    if (mode is not None and embed.max_norm is None and not inference   # (no version counters)
            and k is not None and k.gemm is not None
            and ptrs is not None and ew.shape[1] == rnn.input_size
            and hw.shape[1] == rnn.hidden_size and ew.is_contiguous() and hw.is_contiguous()
            and ew.dim() == hw.dim() == 2 and (hb is None or tuple(hb.shape) == hw.shape[:1])
            and all(p.dtype == w.dtype and p.device == w.device
                    for p in (ew, hw) + (() if hb is None else (hb,)))):
        return _LMPlan(k, rnn, mode, embed, head, ptrs, key)
    return None
