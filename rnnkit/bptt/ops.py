"""The BPTT node as torch custom operators, for ``torch.compile`` and ``torch.export``.

Eager mode runs :class:`rnnkit.bptt.function.BPTT` (an ``autograd.Function`` over ctypes
kernels, with workspace buffers recycled through ``weakref.finalize``). Neither dynamo nor
export can trace that: a kernel needs real data pointers, and the finalizer's registry breaks
dynamo's guards. While tracing, :func:`rnnkit.bptt.function.run` calls the operators here
instead, which the tracer sees as two opaque calls with known output shapes:

- ``rnnkit::bptt_forward``: one layer-direction's forward; returns the output, each state's
  final value, the inner states per token and the cell's cache (what the backward reads);
- ``rnnkit::bptt_backward``: its gradients, from those tensors and the output gradients.

Both run exactly the eager node's code (:func:`~rnnkit.bptt.function.forward_pass`,
:func:`~rnnkit.bptt.function.backward_pass`), so compiled results equal eager ones; the
forward's private buffers are fresh tensors (no workspace), the price of leaving the node.

What is not a tensor travels as plain values: the cell as a key (:func:`cell_key`; rnnkit's own
cells by class, so a saved program finds them in another process once rnnkit is imported), the
schedule as (batch, sizes, reverse) (``sizes`` empty for a full batch, so the sequence length
stays symbolic), the options as their tensors.
"""
import importlib
import json
import sys
from types import SimpleNamespace
from typing import Optional

import torch
from torch import Tensor

from torch._subclasses.fake_tensor import unset_fake_temporarily

from rnnkit import kernels
from rnnkit.bptt.function import backward_pass, forward_pass
from rnnkit.bptt.options import StepOptions
from rnnkit.bptt import telemetry
from rnnkit.bptt.cell_keys import _CELLS, cell_key
from rnnkit.bptt.schedule import Schedule
from rnnkit.cells.base import Cell, CellError
from rnnkit.cells.fused import fused

_SCHEDS = {}         # (batch, T or sizes, reverse) -> Schedule (its kernel plan is cached on it)


def lookup(key):
    """The cell a :func:`cell_key` stands for. A program saved to a file names its cell's class
    by module: rnnkit's own modules are imported here; any other must already be imported (the
    program's file does not choose code to run: the caller imports the cell's module, as the
    code that exported the program did), else a one-line CellError names it."""
    cell = _CELLS.get(key)
    if cell is None:
        module, rest = key.split(":", 1)
        name, _, attrs = rest.partition(":")
        if "@" in name:
            raise CellError(f"cell {module}.{name.split('@')[0]} was traced in another process "
                            f"and named there by its object (attributes that are not JSON "
                            f"values, or another class of the same module and name traced "
                            f"before it): a program of it runs only where it was traced; keep "
                            f"tensors in the cell's parameters, other attributes plain, and one "
                            f"class a name")
        if module != "rnnkit" and not module.startswith("rnnkit."):
            if module not in sys.modules:
                raise CellError(f"this program runs the cell {module}.{name}: import {module} "
                                f"(the module that defines it) before calling the program")
            found = sys.modules[module]
        else:
            found = importlib.import_module(module)
        cls = found
        for part in name.split("."):                  # a class nested in another
            cls = getattr(cls, part, None)
        if not isinstance(cls, type) or not issubclass(cls, Cell):
            raise CellError(f"this program runs the cell {module}.{name}, which module {module} "
                            f"does not define as an rnnkit Cell class")
        cell = cls.__new__(cls)
        cell.__dict__.update(json.loads(attrs))
        cell = _CELLS.setdefault(key, cell)
    return cell


def _schedule(N, batch, sizes, reverse):
    """sizes: "" for a full batch, else the batch sizes per step joined by commas."""
    key = (batch, sizes or N // batch, reverse)
    sched = _SCHEDS.get(key)
    if sched is None:
        if len(_SCHEDS) > 256:
            _SCHEDS.clear()
        sched = _SCHEDS[key] = Schedule([int(b) for b in sizes.split(",")], reverse) if sizes \
            else Schedule.full(N // batch, batch, reverse)
    return sched


def _options(rec_mask, zone, zone_which, keep, n_states, return_all):
    """zone_which: a bit per state that has a zoneout tensor in ``zone``."""
    zoneout = None
    if zone_which:
        it = iter(zone)
        zoneout = tuple(next(it) if zone_which >> k & 1 else None for k in range(n_states))
    return StepOptions(rec_mask=rec_mask, zoneout=zoneout, keep=keep, return_all=return_all)


def _fresh(tensors, inputs):
    """The tensors with any that shares memory with an input or an earlier one copied (an
    operator's outputs may not alias)."""
    seen = {t.untyped_storage().data_ptr() for t in inputs if t is not None}
    out = []
    for t in tensors:
        p = t.untyped_storage().data_ptr()
        if p in seen:
            t = t.clone()
            p = t.untyped_storage().data_ptr()
        seen.add(p)
        out.append(t)
    return out


@torch.library.custom_op("rnnkit::bptt_forward", mutates_args=())
def bptt_forward(x: Tensor, w_ih: Optional[Tensor], w_hh: Tensor, b_ih: Optional[Tensor],
                 b_hh: Optional[Tensor], h0: list[Tensor], inits: list[Tensor],
                 params: list[Tensor], rec_mask: Optional[Tensor], zone: list[Tensor],
                 zone_which: int, keep: Optional[Tensor], cell: str, batch: int,
                 sizes: str, reverse: bool, return_all: bool,
                 tag: Optional[list[int]] = None, who: Optional[Tensor] = None) -> list[Tensor]:
    """[out, *finals, *inner states, *cell's own states (zoneout only), *cache]. ``tag``,
    ``who``: the layer's for gradient telemetry (:func:`rnnkit.bptt.telemetry.tag_ids`)."""
    c = lookup(cell)
    sched = _schedule(x.shape[0], batch, sizes, reverse)
    opts = _options(rec_mask, zone, zone_which, keep, c.N_STATES, return_all)
    c = fused(c, x)
    ctx = SimpleNamespace(save_for_backward=lambda *t: None)
    _, S, R, cache, finals = forward_pass(ctx, c, sched, None, opts, x, w_ih, w_hh, b_ih, b_hh,
                                          (*h0, *inits, *params), pool=False)
    raw = list(R) if opts.zoned else []
    return _fresh([S[0], *finals, *S[1:], *raw, *cache],
                  [x, w_ih, w_hh, b_ih, b_hh, *h0, *inits, *params])


def _forward_shapes(x, w_ih, w_hh, cell, batch, zone_which):
    with unset_fake_temporarily():         # the first use builds and tries the kernels for real
        kernels.available()
    c = fused(lookup(cell), x)             # as the real call picks it: the cache may differ
    N, sizes = x.shape[0], c.state_sizes(w_hh)
    GH = x.shape[1] if w_ih is None else w_ih.shape[0]
    S = [x.new_empty(N, h) for h in sizes]
    finals = [x.new_empty(batch, h) for h in sizes]
    raw = [x.new_empty(N, h) for h in sizes] if zone_which else []
    cache = list(c.alloc_cache(N, sizes, x, x.new_empty(N, GH)))
    return c, S, finals, raw, cache


@bptt_forward.register_fake
def _(x, w_ih, w_hh, b_ih, b_hh, h0, inits, params, rec_mask, zone, zone_which, keep, cell,
      batch, sizes, reverse, return_all, tag=None, who=None):
    _, S, finals, raw, cache = _forward_shapes(x, w_ih, w_hh, cell, batch, zone_which)
    return [S[0], *finals, *S[1:], *raw, *cache]


@torch.library.custom_op("rnnkit::bptt_backward", mutates_args=())
def bptt_backward(x: Tensor, w_ih: Optional[Tensor], w_hh: Tensor, b_ih: Optional[Tensor],
                  b_hh: Optional[Tensor], h0: list[Tensor], inits: list[Tensor],
                  params: list[Tensor], rec_mask: Optional[Tensor], zone: list[Tensor],
                  zone_which: int, keep: Optional[Tensor], cell: str, batch: int,
                  sizes: str, reverse: bool, return_all: bool, saved: list[Tensor],
                  grads: list[Tensor], needs: list[bool],
                  tag: Optional[list[int]] = None, who: Optional[Tensor] = None) -> list[Tensor]:
    """The gradients of [x, w_ih, w_hh, b_ih, b_hh] (an empty tensor where ``needs`` is False
    or the input is None), then of every h0, init and param."""
    c = lookup(cell)
    ns = c.N_STATES
    sched = _schedule(x.shape[0], batch, sizes, reverse)
    opts = _options(rec_mask, zone, zone_which, keep, ns, return_all)
    c = fused(c, x)
    n_raw = ns if opts.zoned else 0
    out, inner = saved[0], list(saved[1 + ns:2 * ns])         # saved: bptt_forward's outputs
    raw = list(saved[2 * ns:2 * ns + n_raw])
    cache = tuple(t.clone() for t in saved[2 * ns + n_raw:])   # the backward works in them
    ctx = SimpleNamespace(
        cell=c, sched=sched, tag=telemetry.from_ids(tag, who), opts=opts, cache=cache, inner=inner,
        raw=raw or None, biases=(b_ih is not None, b_hh is not None), n_inits=len(inits),
        gi_given=w_ih is None, whole=getattr(c, "has_loops", False) and keep is None and not opts.zoned,
        saved_tensors=(x, w_ih, w_hh, out, *h0, *inits, *params),
        needs_input_grad=(False,) * 4 + tuple(needs) + (True,) * (len(h0) + len(inits) + len(params)))
    with torch.autocast(x.device.type, enabled=False):   # as eager's node: outside autocast
        res = backward_pass(ctx, grads[0], tuple(grads[1:]))[4:]
    first = [g if g is not None else x.new_empty(0) for g in res[:5]]
    return _fresh(first + list(res[5:]), [x, w_ih, w_hh, b_ih, b_hh, *h0, *inits, *params, *saved,
                                          *grads])


@bptt_backward.register_fake
def _(x, w_ih, w_hh, b_ih, b_hh, h0, inits, params, rec_mask, zone, zone_which, keep, cell,
      batch, sizes, reverse, return_all, saved, grads, needs, tag=None, who=None):
    first = [t.new_empty(t.shape) if t is not None and n else x.new_empty(0)
             for t, n in zip((x, w_ih, w_hh, b_ih, b_hh), needs)]
    return first + [t.new_empty(t.shape) for t in (*h0, *inits, *params)]


def _setup_context(ctx, inputs, output):
    ctx.args = inputs[5:]                   # the lists, options and plain values
    ctx.save_for_backward(*inputs[:5], *output)
    ctx.n_out = len(output)


def _backward(ctx, grads):
    x, w_ih, w_hh, b_ih, b_hh, *saved = ctx.saved_tensors
    h0, inits, params, rec_mask, zone, zone_which, keep, cell, batch, sizes, reverse, \
        return_all = ctx.args[:12]
    tag = ctx.args[12] if len(ctx.args) > 12 else None
    who = ctx.args[13] if len(ctx.args) > 13 else None
    ns = len(h0)
    # the gradients of out, the finals and (return_all) the inner states; the rest carry none
    used = [g if g is not None else torch.zeros_like(s)
            for g, s in zip(grads[:2 * ns], saved[:2 * ns])]
    need = ctx.needs_input_grad[:5]
    res = torch.ops.rnnkit.bptt_backward(x, w_ih, w_hh, b_ih, b_hh, h0, inits, params, rec_mask,
                                         zone, zone_which, keep, cell, batch, sizes, reverse,
                                         return_all, saved, used, list(need), tag, who)
    first = [g if n and t is not None else None
             for g, n, t in zip(res[:5], need, (x, w_ih, w_hh, b_ih, b_hh))]
    it = iter(res[5:])
    rest = [[next(it) for _ in group] for group in (h0, inits, params)]
    none = lambda xs: [None] * len(xs)          # noqa: E731 - the gradient of a list input
    out = (*first, *rest, None, none(zone), None, None, None, None, None, None, None)
    return out + (None,) * (len(ctx.needs_input_grad) - len(out))   # tag, who: as many as the
    # call passed (a program saved before ``who`` passes one fewer than ctx.args holds)


bptt_forward.register_autograd(_backward, setup_context=_setup_context)


def run(cell, sched, x, w_ih, w_hh, b_ih, b_hh, h0, opts, inits, params, tag=None):
    """:func:`rnnkit.bptt.function.run` through the operators (same returns)."""
    ns = cell.N_STATES
    zone = [z for z in opts.zoneout if z is not None] if opts.zoned else []
    zone_which = sum(1 << k for k, z in enumerate(opts.zoneout) if z is not None) \
        if opts.zoned else 0
    sizes = "" if sched.uniform else ",".join(str(b) for b in sched.sizes)
    ints, who = telemetry.tag_ids(tag)
    key = (getattr(tag[0], "_cell_key", None) if tag else None) or cell_key(cell)   # the one
    # the layer keeps (rnnkit.bptt.cell_keys), else the cell's own, taken as traced
    res = torch.ops.rnnkit.bptt_forward(
        x, w_ih, w_hh, b_ih, b_hh, list(h0), list(inits), list(params), opts.rec_mask, zone,
        zone_which, opts.keep, key, sched.B, sizes, bool(sched.reverse),
        bool(opts.return_all), ints, who)
    out, finals = res[0], tuple(res[1:1 + ns])
    if opts.return_all:
        inner = tuple(res[1 + ns:2 * ns])
        cache = res[2 * ns + (ns if opts.zoned else 0):]
        raw = res[2 * ns] if opts.zoned else out               # the state before zoneout
        gates = (cache[0] if cache and getattr(cell, "CACHED_GATES", True) else raw).detach()
        return out, finals, inner, gates
    return out, finals
