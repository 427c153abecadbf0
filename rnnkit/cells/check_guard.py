"""A user's cell as :func:`rnnkit.cells.check.check_cell` hands it to the BPTT node: every method
it gives the node turned into one whose failure is a one-line :class:`CellError`, and the
returns the node relies on checked."""
import math

import torch

from rnnkit.cells import validate
from rnnkit.cells.base import CellError


class Guarded:
    """The cell, with every method it gives the node turned into one whose failure is a
    :class:`CellError` naming the method, and the returns the node relies on checked (the
    layer's two-step trial is not run here: it refuses a forward that differs from
    reference_step, which check_cell reports instead). Its own type also keeps the node on the
    cell's Python steps: compiled variants are looked up by the cell's type."""

    def __init__(self, cell, w_hh, params):
        self.cell, self.name = cell, cell.name
        self.w_hh_shape, self.param_shapes = tuple(w_hh.shape), [tuple(p.shape) for p in params]

    def __getattr__(self, attr):
        value = getattr(self.cell, attr)
        if attr in validate.ARGS and callable(value):
            return lambda *args, **kw: self._call(attr, *args, **kw)
        return value

    def _call(self, method, *args, **kw):
        try:
            return getattr(self.cell, method)(*args, **kw)
        except CellError:
            raise
        except Exception as e:
            where = validate.raised_at(e)
            raise CellError(f"{self.name}.{method} raised {type(e).__name__}: {first_line(e)}"
                            + (f" (at {where})" if where else "")) from None

    def _fail(self, method, expected, got):
        raise CellError(f"{self.name}.{method} must return {expected}, got {got}")

    def _per_token(self, method, bufs, n, dtype):
        """The node splits these by token rows: a tuple of tensors (N, ...)."""
        if not isinstance(bufs, (tuple, list)) or not all(
                isinstance(b, torch.Tensor) and b.dim() >= 1 and b.shape[0] == n for b in bufs):
            self._fail(method, f"a tuple of per-token tensors (N={n}, ...)", _shapes(bufs))
        self._dtype(method, [b for b in bufs if b.is_floating_point()], dtype, "buffers")
        return bufs

    def _dtype(self, method, tensors, dtype, what):
        """Floating returns at least as precise as the layer's dtype: a float32 buffer in this
        float64 check rounds at 1e-7 with no error of its own (the maths was called wrong, or a
        float32 gradient passed)."""
        bad = validate.coarser(tensors, dtype)
        if bad is not None:
            self._fail(method, f"{what} of the layer's dtype {dtype} (made from the inputs: "
                               f"like.new_empty(...), not torch.empty(...))", bad)

    def alloc_cache(self, n, sizes, like, gi):
        return self._per_token("alloc_cache", self._call("alloc_cache", n, sizes, like, gi), n,
                               gi.dtype)

    def prepare_backward(self, cache, states, prev, params):
        pre = self._call("prepare_backward", cache, states, prev, params)
        return self._per_token("prepare_backward", pre, states[0].shape[0], states[0].dtype)

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        for o in out:
            o.fill_(math.nan)                     # so that a state left unwritten shows
        inputs = {**{f"prev[{k}]": p for k, p in enumerate(prev)}, "hrec": hrec}
        before = {n: t.clone() for n, t in inputs.items()}
        self._call("forward_step", gi, prev, hrec, w_hh_t, b_hh, cache, out, params)
        for n, t in inputs.items():               # the backward reads them as they came
            if not ((t == before[n]) | (t.isnan() & before[n].isnan())).all():
                raise CellError(f"{self.name}.forward_step must not write into {n} (the state "
                                f"before the step, which the backward reads); write the new "
                                f"state into out")
        for k, o in enumerate(out):
            if o.isnan().any():
                raise CellError(f"{self.name}.forward_step must write every element of out[{k}] "
                                f"(state {self.cell.STATES[k]}); some were left unwritten or NaN")

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        dgi.fill_(math.nan)
        dgh.fill_(math.nan)
        self._call("backward_step", dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params)
        for buf, what in ((dgi, "dgi (δ input half)"), (dgh, "dgh (δ recurrent half)")):
            if buf.isnan().any():
                raise CellError(f"{self.name}.backward_step must write every element of {what};"
                                f" some were left unwritten or NaN")

    def weight_grad_hh(self, dgh, hrec, cache, pre):
        g = self._call("weight_grad_hh", dgh, hrec, cache, pre)
        if _shapes([g]) != [self.w_hh_shape]:
            self._fail("weight_grad_hh", f"δW_hh of W_hh's shape {self.w_hh_shape}", _shapes([g]))
        self._dtype("weight_grad_hh", [g], dgh.dtype, "δW_hh")
        return g

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        gs = self._call("param_grads", cache, pre, dG, dGh, dS, params)
        if _shapes(gs) != self.param_shapes:
            self._fail("param_grads", f"the gradients of {', '.join(self.cell.PARAMS)}, shapes "
                       f"{self.param_shapes}", _shapes(gs))
        self._dtype("param_grads", gs, dG.dtype, "gradients")
        return tuple(gs)

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        new = self._call("reference_step", gi, state, w_hh, b_hh, params=params)
        want = [(gi.shape[0], s.shape[1]) for s in state]
        if _shapes(new) != want:
            self._fail("reference_step", f"a tuple of {len(want)} state(s) of shapes {want}",
                       _shapes(new))
        return tuple(new)


def _shapes(items):
    """The shapes of a tuple of tensors, for messages (or what came instead)."""
    if not isinstance(items, (tuple, list)):
        return type(items).__name__
    return [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in items]


def first_line(e):
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
