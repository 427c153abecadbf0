"""Check a cell's hand-derived backward against its own plain-autograd ``reference_step``.

    report = check_cell(MyCell)          # a cell class or instance
    print(report)                        # a table: every quantity, its error, where it is largest
    report.ok

Everything runs in float64 from one seed, through the BPTT node exactly as a layer runs it (the
cell's own Python steps, never a compiled variant of it):

- **one step** (T = 1): the states h_t (c_t) and every gradient, δx_t, δh_{t-1} (δc_{t-1}),
  δW_ih, δW_hh, δb_ih, δb_hh and δ of each of the cell's ``PARAMS``, against autograd through
  ``reference_step``. One step isolates the derivative that is wrong: a wrong δh_{t-1} leaves
  δW_hh right here, while over a sequence it spoils every gradient that flows back through h_{t-1}.
- **a sequence** of T steps the same way, and δh_t (δc_t): the total dL/ds_t at every step, as the
  node's reverse loop accumulates it, with the step where it first goes wrong.
- ``torch.autograd.gradcheck`` (fast mode) of the node: one step, a sequence, and a packed
  sequence run in reverse (variable lengths, as a bidirectional layer's reverse direction runs
  them).

The loss weighs every state of every step and every final state with its own random weight.
A wrong gradient is reported, never raised. A malformed cell (a required method missing, a call
that fails, a return of the wrong number or shape) raises :class:`CellError`, one line naming the
cell, the method and what was expected against what came.
"""
import math
import re
from dataclasses import dataclass, field

import torch
from torch.autograd.gradcheck import GradcheckError

from rnnkit.bptt.function import run
from rnnkit.bptt.options import StepOptions
from rnnkit.bptt.schedule import Schedule
from rnnkit.bptt.telemetry import GradientRecorder
from rnnkit.cells.base import CellMath

D64 = torch.float64
RTOL, ATOL = 1e-6, 1e-9          # float64: a right backward agrees with autograd to ~1e-14
REQUIRED = ("forward_step", "backward_step", "reference_step")
# what the BPTT node reads from a cell besides the required methods (CellMath has defaults)
DEFAULTED = ("N_STATES", "N_GATES", "FOLD_HH_BIAS", "SEPARATE_DGH", "PARAMS", "TAKES_GI",
             "state_sizes", "alloc_cache", "prepare_backward", "weight_grad_hh", "param_grads")
CORE = {"weight_ih": "W_ih", "weight_hh": "W_hh", "bias_ih": "b_ih", "bias_hh": "b_hh"}


class CellError(ValueError):
    """A malformed cell: the message names the cell, the method, expected and got."""


@dataclass
class Entry:
    """One compared quantity: its largest error, and where that error sits."""
    section: str                 # "one step", "sequence" or "gradcheck"
    name: str                    # "δW_hh", "δh_{t-1}", "h_t", ...
    ok: bool
    max_abs: float = 0.0         # max |rnnkit - autograd|
    rel: float = 0.0             # max_abs / max |autograd|
    where: str = ""              # step, batch row and unit (or row/gate/unit) of the largest error
    note: str = ""


@dataclass
class CellReport:
    cell: str
    sizes: dict
    entries: list = field(default_factory=list)

    @property
    def ok(self):
        return all(e.ok for e in self.entries)

    def failed(self, section=None):
        """Names of the wrong quantities (of one section, or all)."""
        return [e.name for e in self.entries if not e.ok and section in (None, e.section)]

    def entry(self, section, name):
        return next(e for e in self.entries if e.section == section and e.name == name)

    def __str__(self):
        s = self.sizes
        lines = [f"check-cell {self.cell}: I={s['input']} H={s['hidden']} B={s['batch']} "
                 f"T={s['steps']}, float64, seed {s['seed']}",
                 f"  {'':16s} {'max abs err':>11s} {'rel err':>9s}  result  largest error at"]
        section = None
        for e in self.entries:
            if e.section != section:
                section = e.section
                lines.append({"one step": "one step (T = 1)",
                              "sequence": f"sequence of {s['steps']} steps",
                              "gradcheck": "torch.autograd.gradcheck of the node"}[section])
            nums = f"{e.max_abs:11.1e} {e.rel:9.1e}" if e.section != "gradcheck" else " " * 21
            where = e.where + (f" ({e.note})" if e.note and e.where else e.note)
            lines.append(f"  {e.name:16s} {nums}  {'ok' if e.ok else 'WRONG':6s}  {where}".rstrip())
        lines.append(self._verdict())
        return "\n".join(lines)

    def _verdict(self):
        if self.ok:
            return "every gradient agrees with autograd through reference_step"
        fwd = [e.name for e in self.entries if not e.ok and not e.name.startswith("δ")
               and e.section != "gradcheck"]
        if fwd:
            return (f"the forward differs from reference_step ({', '.join(fwd)}): forward_step "
                    f"and reference_step compute different things; fix that first")
        one = [e for e in self.entries if e.section == "one step" and not e.ok]
        if not one:
            return f"wrong: {', '.join(self.failed())}"
        text = (f"wrong in one step: {', '.join(e.name for e in one)} (the derivatives to fix; "
                f"the sequence rows show how far the error spreads)")
        gates = {e.where.split(" unit")[0] for e in one if e.where.startswith("gate ")}
        if len(gates) == 1 and sum(e.where.startswith("gate ") for e in one) > 1:
            text += f"; the weight errors are largest in {gates.pop()}'s rows: check its derivative"
        return text


def check_cell(cell, input_size=3, hidden_size=4, batch=2, steps=5, seed=0):
    """Check ``cell`` (a cell class, made without arguments, or an instance). Returns a
    :class:`CellReport`; raises :class:`CellError` for a malformed cell. Keep the sizes small:
    gradcheck perturbs every input element."""
    for arg, v in (("input_size", input_size), ("hidden_size", hidden_size), ("batch", batch),
                   ("steps", steps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"check_cell: {arg} must be a positive int, got {v!r}")
    cell, name = _validate(cell)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # tiny tensors: threads cost more than they give
    try:
        return _check(cell, name, input_size, hidden_size, batch, steps, seed)
    finally:
        torch.set_num_threads(threads)


def _check(cell, name, input_size, hidden_size, batch, steps, seed):
    sizes = dict(input=input_size, hidden=hidden_size, batch=batch, steps=steps, seed=seed)
    report = CellReport(name, sizes)
    g = torch.Generator().manual_seed(seed)
    w, params = _weights(cell, name, input_size, hidden_size, g)
    guarded = _Guarded(cell, name, w["weight_hh"].shape, [p.shape for p in params])
    h_sizes = _state_sizes(guarded, w["weight_hh"])
    for section, T in (("one step", 1), ("sequence", steps)):
        x = torch.randn(T * batch, input_size, dtype=D64, generator=g)
        h0 = [0.5 * torch.randn(batch, n, dtype=D64, generator=g) for n in h_sizes]
        report.entries += _parity(guarded, section, T, batch, x, w, h0, params, g)
    report.entries += _gradchecks(guarded, input_size, h_sizes, batch, steps, w, params, g)
    return report


# ---- the cell: made, validated, and watched while the node runs it -------------------------

def _validate(cell):
    name = getattr(cell, "__name__", None) or type(cell).__name__
    if isinstance(cell, type):
        try:
            cell = cell()
        except Exception as e:
            raise CellError(f"{name}() could not be made without arguments ({_line(e)}); pass "
                            f"an instance instead (rnnkit check-cell: --class NAME of one)") from None
    cls = type(cell)
    for m in REQUIRED:
        if getattr(cls, m, None) is None or getattr(cls, m) is getattr(CellMath, m, object()):
            raise CellError(f"{name}.{m}: missing (a cell defines {', '.join(REQUIRED)})")
    for m in DEFAULTED:
        if not hasattr(cell, m):
            raise CellError(f"{name}.{m}: missing (subclass rnnkit.cells.base.CellMath for its "
                            f"default)")
    for attr in ("N_STATES", "N_GATES"):
        v = getattr(cell, attr)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise CellError(f"{name}.{attr}: expected a positive int, got {v!r}")
    names = cell.PARAMS
    if not isinstance(names, (tuple, list)) or not all(isinstance(p, str) for p in names):
        raise CellError(f"{name}.PARAMS: expected a tuple of parameter names, got {cell.PARAMS!r}")
    return cell, name


def _state_sizes(cell, w_hh):
    sizes = cell.state_sizes(w_hh)
    if (not isinstance(sizes, (tuple, list)) or len(sizes) != cell.N_STATES
            or not all(isinstance(n, int) and n > 0 for n in sizes)):
        raise CellError(f"{cell.name}.state_sizes: expected {cell.N_STATES} positive int(s) "
                        f"(N_STATES), got {sizes!r}")
    return tuple(sizes)


def _shapes(cell, name, I, H):
    """{name: shape} of one layer-direction's parameters: the cell's ``param_shapes`` (W_ih and
    W_hh, the biases where it has them, every PARAMS entry)."""
    if hasattr(cell, "param_shapes"):
        try:
            shapes = cell.param_shapes(I, H)
        except Exception as e:
            raise CellError(f"{name}.param_shapes raised {type(e).__name__}: {_line(e)}") from None
    else:                                   # cells written before param_shapes was declared
        GH = cell.N_GATES * H
        shapes = {"weight_ih": (GH, I), "weight_hh": (GH, H), "bias_ih": (GH,), "bias_hh": (GH,)}
        shapes.update((n, (GH,) if "hh" in n else (H, H) if n == "weight_hr" else (H,))
                      for n in cell.PARAMS)
    want = ("weight_ih", "weight_hh", *cell.PARAMS)
    if not isinstance(shapes, dict) or any(n not in shapes for n in want):
        got = tuple(shapes) if isinstance(shapes, dict) else type(shapes).__name__
        raise CellError(f"{name}.param_shapes: expected a dict naming {', '.join(want)}, got {got}")
    for n, s in shapes.items():
        if not (isinstance(s, (tuple, list, torch.Size))
                and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in s)):
            raise CellError(f"{name}.param_shapes({I}, {H}): expected {n}'s shape as a tuple of "
                            f"positive ints, got {s!r}")
    return {n: tuple(s) for n, s in shapes.items()}


def _weights(cell, name, I, H, g):
    """The parameters as the cell initialises them (``init_parameter``), plus noise, float64:
    a derivative that forgets a factor must not pass because the factor starts at 1 or 0.
    Returns ({core name: tensor}, [PARAMS tensors])."""
    tensors = {}
    for n, shape in _shapes(cell, name, I, H).items():
        t = torch.zeros(shape, dtype=D64)
        if hasattr(cell, "init_parameter"):
            try:
                cell.init_parameter(n, t, H)
            except Exception as e:
                raise CellError(f"{name}.init_parameter raised {type(e).__name__} on {n} "
                                f"{shape}: {_line(e)}") from None
        tensors[n] = t + 0.3 * torch.randn(shape, dtype=D64, generator=g)
    return ({n: tensors[n] for n in CORE if n in tensors},
            [tensors[n] for n in cell.PARAMS])


class _Guarded:
    """The cell seen through checks: a call that fails, or returns the wrong number or shape,
    becomes a :class:`CellError` naming the method. Its own type keeps the node on the cell's
    Python steps (compiled variants are looked up by the cell's type)."""

    def __init__(self, cell, name, w_hh_shape, param_shapes):
        self.cell, self.name = cell, name
        self.w_hh_shape, self.param_shapes = tuple(w_hh_shape), [tuple(s) for s in param_shapes]

    def __getattr__(self, attr):
        return getattr(self.cell, attr)

    def _call(self, method, *args, **kw):
        try:
            return getattr(self.cell, method)(*args, **kw)
        except CellError:
            raise
        except Exception as e:
            raise CellError(f"{self.name}.{method} raised {type(e).__name__}: {_line(e)}") from None

    def _fail(self, method, expected, got):
        raise CellError(f"{self.name}.{method}: expected {expected}, got {got}")

    def _rows(self, method, what, items, n):
        if not isinstance(items, (tuple, list)):
            self._fail(method, f"a tuple of {what}", type(items).__name__)
        for k, t in enumerate(items):
            if not isinstance(t, torch.Tensor) or t.dim() < 1 or t.shape[0] != n:
                self._fail(method, f"{what}: tensors with one row per token (N = {n})",
                           f"item {k}: {_shape(t)}")
        return items

    def state_sizes(self, w_hh):
        return self._call("state_sizes", w_hh)

    def alloc_cache(self, n, sizes, like, gi):
        cache = self._call("alloc_cache", n, sizes, like, gi)
        return self._rows("alloc_cache", "per-token buffers", cache, n)

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        for o in out:
            o.fill_(math.nan)      # so that a state the step leaves unwritten shows
        self._call("forward_step", gi, prev, hrec, w_hh_t, b_hh, cache, out, params)
        for k, o in enumerate(out):
            if o.isnan().any():
                self._fail("forward_step", f"every state of the step written into out[{k}]",
                           "NaN left in it")

    def prepare_backward(self, cache, states, prev, params):
        n = states[0].shape[0]
        return self._rows("prepare_backward", "per-token factors", self._call(
            "prepare_backward", cache, states, prev, params), n)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        dgi.fill_(math.nan)
        if dgh is not dgi:
            dgh.fill_(math.nan)
        self._call("backward_step", dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params)
        for buf, what in ((dgi, "δ(input half) written into dgi"),
                          (dgh, "δ(recurrent half) written into dgh (SEPARATE_DGH)")):
            if buf.isnan().any():
                self._fail("backward_step", what, "NaN left in it")

    def weight_grad_hh(self, dgh, hrec, cache, pre):
        g = self._call("weight_grad_hh", dgh, hrec, cache, pre)
        if not isinstance(g, torch.Tensor) or tuple(g.shape) != self.w_hh_shape:
            self._fail("weight_grad_hh", f"δW_hh of W_hh's shape {self.w_hh_shape}", _shape(g))
        return g

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        gs = self._call("param_grads", cache, pre, dG, dGh, dS, params)
        want = self.param_shapes
        if not isinstance(gs, (tuple, list)) or len(gs) != len(want):
            got = f"{len(gs)}" if isinstance(gs, (tuple, list)) else type(gs).__name__
            self._fail("param_grads", f"{len(want)} gradient(s), one per PARAMS "
                       f"{tuple(self.cell.PARAMS)}", got)
        for pname, gr, s in zip(self.cell.PARAMS, gs, want):
            if not isinstance(gr, torch.Tensor) or tuple(gr.shape) != s:
                self._fail("param_grads", f"δ{pname} of shape {s}", _shape(gr))
        return tuple(gs)

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        new = self._call("reference_step", gi, state, w_hh, b_hh, params=params)
        want = [(gi.shape[0], s.shape[1]) for s in state]
        if not isinstance(new, (tuple, list)) or len(new) != len(want):
            got = f"{len(new)}" if isinstance(new, (tuple, list)) else type(new).__name__
            self._fail("reference_step", f"a tuple of {len(want)} state(s) (N_STATES)", got)
        for k, (s, shape) in enumerate(zip(new, want)):
            if not isinstance(s, torch.Tensor) or tuple(s.shape) != shape:
                self._fail("reference_step", f"state {k} of shape {shape}", _shape(s))
        return tuple(new)


def _line(e):
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _shape(t):
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__


# ---- parity with autograd through reference_step --------------------------------------------

class _KeepGradients(GradientRecorder):
    """Keeps what the node's reverse loop accumulated: dL/ds_t for every token and state."""

    def record(self, tag, sched, dS, *names):
        self.dS = [d.detach().clone() for d in dS]


def _leaves(*tensors):
    return [t.detach().clone().requires_grad_() for t in tensors]


def _loss(states, finals, weights):
    """Σ_t Σ_k <R_k,t, s_k,t> + Σ_k <F_k, s_k,T>: every state of every step counts."""
    R, F = weights
    return (sum((s * r).sum() for s, r in zip(states, R))
            + sum((f * q).sum() for f, q in zip(finals, F)))


def _grads(leaves):
    return [l.grad if l.grad is not None else torch.zeros_like(l) for l in leaves]


def _inputs(cell, x, w, h0, params):
    """Every differentiable input as a fresh leaf, and its name: x, the weights, the initial
    states, the PARAMS."""
    names = ["x", *(CORE[n] for n in w), *(f"{s}_0" for s in _state_names(cell)), *cell.PARAMS]
    return _leaves(x, *w.values(), *h0, *params), names


def _split(cell, w, leaves):
    """(x, {core name: W}, h0, params) from the leaves of :func:`_inputs`."""
    k, ns = len(w), cell.N_STATES
    return leaves[0], dict(zip(w, leaves[1:1 + k])), leaves[1 + k:1 + k + ns], leaves[1 + k + ns:]


def _through_node(cell, sched, x, w, h0, params, opts=None):
    return run(cell, sched, x, w["weight_ih"], w["weight_hh"], w.get("bias_ih"),
               w.get("bias_hh"), tuple(h0), opts=opts, params=tuple(params))


def _node(cell, T, B, x, w, h0, params, weights):
    """The BPTT node: states per token, gradients of every input, per-token dL/ds_t."""
    leaves, _ = _inputs(cell, x, w, h0, params)
    out, finals, others, _ = _through_node(cell, Schedule.full(T, B), *_split(cell, w, leaves),
                                           opts=StepOptions(return_all=True))
    states = [out, *others]
    rec = _KeepGradients()
    with rec:
        _loss(states, finals, weights).backward()
    return [s.detach() for s in states], _grads(leaves), rec.dS


def _reference(cell, T, B, x, w, h0, params, weights):
    """The same through ``reference_step`` stepped in a loop, autograd doing BPTT (b_hh goes to
    the step unfolded, as the cell's equations have it)."""
    leaves, _ = _inputs(cell, x, w, h0, params)
    x_, w_, h0_, p_ = _split(cell, w, leaves)
    gi = x_ @ w_["weight_ih"].t() + w_.get("bias_ih", 0)                # (T·B, G·H)
    state, per_step = tuple(h0_), []
    for t in range(T):
        state = cell.reference_step(gi[t * B:(t + 1) * B], state, w_["weight_hh"],
                                    w_.get("bias_hh"), params=tuple(p_))
        for s in state:
            s.retain_grad()
        per_step.append(state)
    states = [torch.cat([st[k] for st in per_step]) for k in range(cell.N_STATES)]
    _loss(states, state, weights).backward()
    dS = [torch.cat([st[k].grad if st[k].grad is not None else torch.zeros_like(st[k])
                     for st in per_step]) for k in range(cell.N_STATES)]
    return [s.detach() for s in states], _grads(leaves), dS


def _state_names(cell):
    names = getattr(cell, "STATES", None) or ("h", "c", *(f"s{k}" for k in range(2, 9)))
    return tuple(names)[:cell.N_STATES]


def _parity(cell, section, T, B, x, w, h0, params, g):
    """Entries for one run of T steps: forward states, (per-step δs_t,) then every gradient."""
    sizes = [h.shape[1] for h in h0]
    weights = ([torch.randn(T * B, n, dtype=D64, generator=g) for n in sizes],
               [torch.randn(B, n, dtype=D64, generator=g) for n in sizes])
    got = _node(cell, T, B, x, w, h0, params, weights)
    want = _reference(cell, T, B, x, w, h0, params, weights)
    states, one = _state_names(cell), T == 1
    H = w["weight_ih"].shape[0] // cell.N_GATES
    tok = lambda word: _at_token(B, word, one)                          # noqa: E731
    entries = [_compare(section, f"{n}_t", a, b, tok("unit"), (T, B, True))
               for n, a, b in zip(states, got[0], want[0])]
    if not one:
        entries += [_compare(section, f"δ{n}_t", a, b, tok("unit"), (T, B, False))
                    for n, a, b in zip(states, got[2], want[2])]
    _, names = _inputs(cell, x, w, h0, params)
    grads = dict(zip(names, zip(got[1], want[1])))
    entries.append(_compare(section, "δx_t" if one else "δx", *grads.pop("x"), tok("input")))
    for n in states:
        entries.append(_compare(section, f"δ{n}_{{t-1}}" if one else f"δ{n}_0",
                                *grads.pop(f"{n}_0"), _at_batch))
    entries += [_compare(section, f"δ{n}", a, b, _at_rows(cell, H)) for n, (a, b) in grads.items()]
    return entries


def _compare(section, name, got, want, where, steps=None):
    """max |got - want|, relative to max |want|, and where it is largest. steps = (T, B,
    forward): also name the first step, in the order the pass runs, where it goes wrong."""
    if got.shape != want.shape:
        return Entry(section, name, False, math.inf, math.inf,
                     note=f"shape {tuple(got.shape)}, autograd's {tuple(want.shape)}")
    err = (got - want).abs().nan_to_num(nan=math.inf)
    bad = err > ATOL + RTOL * want.abs()
    if err.numel() == 0 or not bad.any():
        mx = err.max().item() if err.numel() else 0.0
        return Entry(section, name, True, mx, _rel(mx, want))
    idx = tuple(int(i) for i in torch.unravel_index(err.argmax(), err.shape))
    mx = err.max().item()
    note = ""
    if steps is not None and steps[0] > 1:
        T, B, forward = steps
        wrong = bad.reshape(T, B, -1).any(2).any(1).nonzero().flatten().tolist()
        note = f"first wrong at t={wrong[0] if forward else wrong[-1]}" + ("" if forward else
                                                                             ", going back")
    return Entry(section, name, False, mx, _rel(mx, want), where(idx), note)


def _rel(mx, want):
    scale = want.abs().max().item() if want.numel() else 0.0
    return mx / scale if scale > 0 else (0.0 if mx == 0 else math.inf)


def _at_token(B, word, one_step):
    def where(i):
        n, d = i
        return (f"b={n % B} {word} {d}" if one_step else f"t={n // B} b={n % B} {word} {d}")
    return where


def _at_batch(i):
    return f"b={i[0]} unit {i[1]}"


def _at_rows(cell, H):
    """Where in a weight: the gate and unit of a row of G·H (the unit of a row of H), then the
    column."""
    gates = getattr(cell, "GATES", None)

    def where(i):
        r, G = i[0], cell.N_GATES
        if G > 1 and r < G * H:
            gate = gates[r // H] if gates and r // H < len(gates) else r // H
            head = f"gate {gate} unit {r % H}"
        else:
            head = f"unit {r}"
        return head + "".join(f", col {c}" for c in i[1:])
    return where


# ---- gradcheck of the node ----------------------------------------------------------------

def _gradchecks(cell, I, h_sizes, B, T, w, params, g):
    lengths = [max(1, T - b) for b in range(B)]                        # decreasing: packed order
    packed = [sum(n > t for n in lengths) for t in range(T)]
    cases = (("one step", [B], False), ("sequence", [B] * T, False),
             ("packed, reversed", packed, True))
    out_names = [f"{n}_t" if k == 0 else f"final {n}" for k, n in
                 enumerate(_state_names(cell)[:1] + _state_names(cell))]
    entries = []
    for label, sizes, reverse in cases:
        sched = Schedule(sizes, reverse)
        x = torch.randn(sched.N, I, dtype=D64, generator=g)
        h0 = [0.5 * torch.randn(B, n, dtype=D64, generator=g) for n in h_sizes]
        leaves, in_names = _inputs(cell, x, w, h0, params)

        def f(*leaves):
            out, finals = _through_node(cell, sched, *_split(cell, w, leaves))
            return (out, *finals)

        try:
            torch.autograd.gradcheck(f, leaves, fast_mode=True)
            entries.append(Entry("gradcheck", label, True))
        except GradcheckError as e:
            entries.append(Entry("gradcheck", label, False,
                                 note=_gradcheck_note(e, in_names, out_names)))
    return entries


def _gradcheck_note(e, in_names, out_names):
    """'d(h_t)/d(W_hh) differs from finite differences', from gradcheck's message."""
    m = re.search(r"output (\d+) with respect to input (\d+)", str(e))
    if not m:
        return _line(e)
    o, i = int(m.group(1)), int(m.group(2))
    return f"d({out_names[o]})/d({in_names[i]}) differs from finite differences"
