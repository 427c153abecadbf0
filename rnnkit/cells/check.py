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
- ``torch.autograd.gradcheck`` (fast mode) of the node: one step, a sequence, a packed
  sequence run in reverse (variable lengths, as a bidirectional layer's reverse direction runs
  them), and a sequence under recurrent dropout, where the recurrent input h^r = h_{t-1} ⊙ m
  is not h_{t-1} (a forward that reads ``prev[0]`` for ``hrec``, or a backward that adds into
  ``dprev[0]`` for ``dhrec``, agrees everywhere else).

The loss weighs every state of every step and every final state with its own random weight.
A wrong gradient is reported, never raised. A malformed cell (a required method missing, a call
that fails, a return of the wrong number or shape) raises :class:`CellError`, one line naming the
cell, the method and what was expected against what came.
"""
import contextlib
import re
import sys

import torch
from torch.autograd.gradcheck import GradcheckError

from rnnkit.bptt.function import run
from rnnkit.bptt.options import StepOptions
from rnnkit.bptt.schedule import Schedule
from rnnkit.bptt.telemetry import GradientRecorder
from rnnkit.cells import validate
from rnnkit.cells.base import CellError
from rnnkit.cells.check_guard import Guarded, first_line
from rnnkit.cells.check_report import CellReport, Entry, at_batch, at_rows, at_token, compare

D64 = torch.float64
CORE = {"weight_ih": "W_ih", "weight_hh": "W_hh", "bias_ih": "b_ih", "bias_hh": "b_hh"}
__all__ = ["check_cell", "CellReport", "Entry", "CellError"]


def check_cell(cell, input_size=3, hidden_size=4, batch=2, steps=5, seed=0):
    """Check ``cell`` (a cell class, made without arguments, or an instance). Returns a
    :class:`CellReport`; raises :class:`CellError` for a malformed cell. Keep the sizes small:
    gradcheck perturbs every input element."""
    for arg, v in (("input_size", input_size), ("hidden_size", hidden_size), ("batch", batch),
                   ("steps", steps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"check_cell: {arg} must be a positive int, got {v!r}")
    cell = validate.as_cell(cell, "check-cell")      # a Cell with the contract's methods
    name = cell.name
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
    w, params = _weights(cell, input_size, hidden_size, g)
    h_sizes = validate.check_state_sizes(cell, w["weight_hh"])
    guarded = Guarded(cell, w["weight_hh"], params)
    for section, T in (("one step", 1), ("sequence", steps)):
        x = torch.randn(T * batch, input_size, dtype=D64, generator=g)
        h0 = [0.5 * torch.randn(batch, n, dtype=D64, generator=g) for n in h_sizes]
        report.entries += _parity(guarded, section, T, batch, x, w, h0, params, g)
    report.entries += _gradchecks(guarded, input_size, h_sizes, batch, steps, w, params, g)
    return report


# ---- the cell's parameters, and the cell as the node sees it ----------------------------------

def _weights(cell, I, H, g):
    """The parameters as the cell declares and initialises them (``param_shapes``,
    ``init_parameter``) plus noise, float64: a derivative that forgets a factor must not pass
    because the factor starts at 1 or 0. Returns ({core name: tensor}, [PARAMS tensors])."""
    tensors = {}
    with torch.random.fork_rng(devices=[]):     # init_parameter draws from the global generator:
        torch.manual_seed(g.initial_seed())     # seeded here, and left as it was afterwards
        for n, shape in validate.check_params(cell, I, H).items():
            t = torch.zeros(shape, dtype=D64)
            validate.init_parameter(cell, n, t, H)
            tensors[n] = t + 0.3 * torch.randn(shape, dtype=D64, generator=g)
    return ({n: tensors[n] for n in CORE if n in tensors}, [tensors[n] for n in cell.PARAMS])


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
        for k, s in enumerate(state):
            if not s.requires_grad:
                raise CellError(f"{cell.name}.reference_step must return states computed from "
                                f"its inputs by autograd; state {k} is not (.detach(), .item(), "
                                f".tolist() or a new tensor cut it off)")
            s.retain_grad()
        per_step.append(state)
    states = [torch.cat([st[k] for st in per_step]) for k in range(cell.N_STATES)]
    _loss(states, state, weights).backward()
    dS = [torch.cat([st[k].grad if st[k].grad is not None else torch.zeros_like(st[k])
                     for st in per_step]) for k in range(cell.N_STATES)]
    return [s.detach() for s in states], _grads(leaves), dS


def _state_names(cell):
    return tuple(cell.STATES)


def _parity(cell, section, T, B, x, w, h0, params, g):
    """Entries for one run of T steps: forward states, (per-step δs_t,) then every gradient."""
    sizes = [h.shape[1] for h in h0]
    weights = ([torch.randn(T * B, n, dtype=D64, generator=g) for n in sizes],
               [torch.randn(B, n, dtype=D64, generator=g) for n in sizes])
    got = _node(cell, T, B, x, w, h0, params, weights)
    want = _reference(cell, T, B, x, w, h0, params, weights)
    states, one = _state_names(cell), T == 1
    H = w["weight_ih"].shape[0] // cell.N_GATES
    tok = lambda word: at_token(B, word, one)                          # noqa: E731
    entries = [compare(section, f"{n}_t", a, b, tok("unit"), (T, B, True))
               for n, a, b in zip(states, got[0], want[0])]
    _, names = _inputs(cell, x, w, h0, params)
    grads = dict(zip(names, zip(got[1], want[1])))
    entries.append(compare(section, "δx_t" if one else "δx", *grads.pop("x"), tok("input")))
    for n in states:
        entries.append(compare(section, f"δ{n}_{{t-1}}" if one else f"δ{n}_0",
                                *grads.pop(f"{n}_0"), at_batch))
    entries += [compare(section, f"δ{n}", a, b, at_rows(cell, H, n not in cell.PARAMS
                                                        or a.shape[0] == cell.N_GATES * H))
                for n, (a, b) in grads.items()]   # (a cell's own parameter of H rows: no gates)
    if not one:
        per_step = [compare(section, f"δ{n}_t", a, b, tok("unit"), (T, B, False))
                    for n, a, b in zip(states, got[2], want[2])]
        entries[len(states):len(states)] = _as_recorded(per_step, entries)
    return entries


def _as_recorded(per_step, others):
    """The δs_t rows, which read the node's buffer after each step's backward, as gradient
    telemetry does: a backward must leave there the total dL/ds_t. Where every other state and
    gradient agrees, a wrong row is such a backward, and is said so."""
    if all(e.ok for e in others):
        for e in per_step:
            if not e.ok:
                e.note = ("the weights' gradients agree, but the backward left only a part of "
                          "dL/ds_t in dstate, which gradient telemetry reads after each step: add "
                          "the step's own paths into dstate in place and do not use it as scratch")
    return per_step


# ---- gradcheck of the node ----------------------------------------------------------------

GRADCHECK_STEPS, GRADCHECK_BATCH = 6, 3   # finite differences need a short, tame sequence


def _gradchecks(cell, I, h_sizes, B, T, w, params, g):
    """gradcheck (fast mode) of the node on at most GRADCHECK_STEPS steps of GRADCHECK_BATCH
    sequences: over long sequences random weights (times a dropout mask's 1/(1-p)) make the
    state chaotic, finite differences then disagree with a right backward, and the Jacobians
    gradcheck builds to explain a failure grow past memory. The parity sections above run at
    the sizes asked for."""
    T, B = min(T, GRADCHECK_STEPS), min(B, GRADCHECK_BATCH)
    lengths = [max(1, T - b) for b in range(B)]                        # decreasing: packed order
    packed = [sum(n > t for n in lengths) for t in range(T)]
    mask = (torch.rand(B, h_sizes[0], generator=g) > 0.5).to(D64) / 0.5     # (B, H)
    cases = (("one step", [B], False, None), ("sequence", [B] * T, False, None),
             ("packed, reversed", packed, True, None),
             ("rec. dropout", [B] * T, False, mask))
    out_names = [f"{n}_t" if k == 0 else f"final {n}" for k, n in
                 enumerate(_state_names(cell)[:1] + _state_names(cell))]
    entries = []
    for label, sizes, reverse, rec_mask in cases:
        sched = Schedule(sizes, reverse)
        opts = StepOptions(rec_mask=rec_mask) if rec_mask is not None else None
        x = torch.randn(sched.N, I, dtype=D64, generator=g)
        h0 = [0.5 * torch.randn(B, n, dtype=D64, generator=g) for n in h_sizes]
        leaves, in_names = _inputs(cell, x, w, h0, params)

        def f(*leaves):
            out, finals = _through_node(cell, sched, *_split(cell, w, leaves), opts=opts)[:2]
            return (out, *finals)

        try:
            with _no_slow_mode():
                torch.autograd.gradcheck(f, leaves, fast_mode=True)
            entries.append(Entry("gradcheck", label, True))
        except GradcheckError as e:
            entries.append(Entry("gradcheck", label, False,
                                 note=_gradcheck_note(e, in_names, out_names)))
    return entries


@contextlib.contextmanager
def _no_slow_mode():
    """gradcheck's fast mode without its slow-mode recomputation on a failure (the full
    Jacobians, for a longer message; rnnkit reads only which output and input disagree)."""
    gc = torch.autograd.gradcheck
    module = sys.modules.get(getattr(gc, "__module__", ""), None) or gc
    slow = getattr(module, "_run_slow_mode_and_get_error", None)
    if slow is None:
        yield
        return
    module._run_slow_mode_and_get_error = lambda *args, **kwargs: ""
    try:
        yield
    finally:
        module._run_slow_mode_and_get_error = slow


def _gradcheck_note(e, in_names, out_names):
    """'d(h_t)/d(W_hh) differs from finite differences', from gradcheck's message."""
    m = re.search(r"output (\d+) with respect to input (\d+)", str(e))
    if not m:
        return first_line(e)
    o, i = int(m.group(1)), int(m.group(2))
    return f"d({out_names[o]})/d({in_names[i]}) differs from finite differences"
