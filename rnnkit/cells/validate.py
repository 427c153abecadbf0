"""A cell checked against the contract (:mod:`rnnkit.cells.base`) when a layer is built from it.

Three checks, each raising :class:`CellError` with the cell, the method, expected and got:

1. the class: a subclass of ``Cell`` that defines the required methods, with the contract's
   arguments, and sensible declarations (``N_GATES``, ``STATES``, ``PARAMS``);
2. its parameters: ``param_shapes`` names W_ih, W_hh and every ``PARAMS`` entry, W_ih and the
   biases as wide as the gates;
3. a trial (cells from outside rnnkit): two steps of two rows through every method, on the
   layer's own first weights, before any real input: a method that fails, writes too little,
   or returns the wrong number or shape of tensors is named there, not from inside the time loop.

The numbers of the trial are checked only grossly (forward_step against reference_step);
``rnnkit check-cell`` compares every gradient.
"""
import inspect

import torch

from rnnkit.cells.base import Cell, CellError

# the arguments of each method the BPTT node calls, as it passes them
ARGS = {
    "forward_step": ("gi", "prev", "hrec", "w_hh_t", "b_hh", "cache", "out", "params"),
    "backward_step": ("dstate", "pre", "w_hh", "dgi", "dgh", "dprev", "dhrec", "params"),
    "reference_step": ("gi", "state", "w_hh", "b_hh"),
    "alloc_cache": ("n", "sizes", "like", "gi"),
    "prepare_backward": ("cache", "states", "prev", "params"),
    "weight_grad_hh": ("dgh", "hrec", "cache", "pre"),
    "param_grads": ("cache", "pre", "dG", "dGh", "dS", "params"),
    "param_shapes": ("input_size", "hidden_size"),
    "init_parameter": ("name", "weight", "hidden_size"),
    "state_sizes": ("w_hh",),
    "layer_norm": (),
}
KEYWORDS = {"reference_step": {"hrec": None, "params": ()}}    # passed by name
CORE = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
FLAGS = ("FOLD_HH_BIAS", "SEPARATE_DGH", "TAKES_GI")


def make(cell, who="Recurrent"):
    """A Cell instance from a Cell instance or subclass (made without arguments)."""
    if isinstance(cell, type) and issubclass(cell, Cell):
        try:
            return cell()
        except Exception as e:
            hint = (f"define an instance in the file (CELL = {cell.__name__}(...)), which "
                    f"check-cell takes instead" if who == "check-cell" else
                    "pass an instance instead")
            raise CellError(f"{who}: could not make {cell.__name__}() without arguments "
                            f"({_line(e)}); {hint}") from e
    if isinstance(cell, Cell):
        return cell
    got = cell.__name__ if isinstance(cell, type) else type(cell).__name__
    named = "" if who == "check-cell" else " or a registered name"
    raise CellError(f"{who}: a cell is a subclass of rnnkit.Cell (the class or an instance)"
                    f"{named}, got {got}")


def check_class(cell):
    """Check 1: required methods defined, every method's arguments, the declarations."""
    name, cls = cell.name, type(cell)
    for m in Cell.REQUIRED:
        if getattr(cls, m, None) is getattr(Cell, m):
            raise CellError(f"{name} does not define {m}({', '.join(ARGS[m])}), which every "
                            f"cell must (required: {', '.join(Cell.REQUIRED)})")
    for m, args in ARGS.items():
        try:
            sig = inspect.signature(getattr(cell, m))
        except (TypeError, ValueError):
            continue                                    # a builtin or C callable: trust it
        try:
            sig.bind(*args, **KEYWORDS.get(m, {}))
        except TypeError:
            names = [*args, *(f"{k}=" for k in KEYWORDS.get(m, {}))]
            raise CellError(f"{name}.{m} must take the arguments ({', '.join(names)}), its "
                            f"signature is {m}{sig}") from None
    if cell.PARAMS and getattr(cls, "param_grads") is Cell.param_grads:
        raise CellError(f"{name} declares PARAMS {tuple(cell.PARAMS)} but does not define "
                        f"param_grads(cache, pre, dG, dGh, dS, params), their gradients")
    G, states, params = cell.N_GATES, cell.STATES, cell.PARAMS
    if isinstance(G, bool) or not isinstance(G, int) or G < 1:
        raise CellError(f"{name}.N_GATES must be a positive int, got {G!r}")
    if (not isinstance(states, tuple) or not states or len(set(states)) != len(states)
            or not all(isinstance(s, str) and s.isidentifier() for s in states)):
        raise CellError(f"{name}.STATES must be a tuple of distinct state names, h first, "
                        f"such as ('h', 'c'), got {states!r}")
    if cell.N_STATES != len(states):
        raise CellError(f"{name}.N_STATES is {cell.N_STATES!r} but STATES names "
                        f"{len(states)}: {states!r}")
    if (not isinstance(params, tuple) or len(set(params)) != len(params)
            or not all(isinstance(p, str) and p.isidentifier() and p not in CORE for p in params)):
        raise CellError(f"{name}.PARAMS must be a tuple of distinct parameter names other than "
                        f"{', '.join(CORE)}, got {params!r}")
    for flag in FLAGS:
        if not isinstance(getattr(cell, flag), bool):
            raise CellError(f"{name}.{flag} must be True or False, got {getattr(cell, flag)!r}")


def check_params(cell, input_size, hidden_size, bias=True):
    """Check 2: ``param_shapes(I, H)``; returns {name: shape}, without the biases if not bias."""
    name = cell.name
    shapes = _call(cell, "param_shapes", "", input_size, hidden_size)
    if not isinstance(shapes, dict):
        raise CellError(f"{name}.param_shapes must return a dict {{name: shape}}, got "
                        f"{type(shapes).__name__}")
    want = ("weight_ih", "weight_hh", *cell.PARAMS)
    missing = [n for n in want if n not in shapes]
    extra = [n for n in shapes if n not in want and n not in ("bias_ih", "bias_hh")]
    if missing or extra:
        raise CellError(f"{name}.param_shapes({input_size}, {hidden_size}) must name "
                        f"{', '.join(want)} (and optionally bias_ih, bias_hh); "
                        + (f"missing {', '.join(missing)}" if missing else "")
                        + ("; " if missing and extra else "")
                        + (f"got {', '.join(extra)}, not in PARAMS" if extra else ""))
    GH = cell.N_GATES * hidden_size
    fixed = {"weight_ih": (GH, input_size), "bias_ih": (GH,), "bias_hh": (GH,)}
    out = {}
    for n, shape in shapes.items():
        ok = isinstance(shape, (tuple, list, torch.Size)) and all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        if not ok or (n in fixed and tuple(shape) != fixed[n]):
            expect = (f"shape {fixed[n]} (N_GATES={cell.N_GATES} x hidden)" if n in fixed
                      else "a shape: a tuple of positive ints")
            raise CellError(f"{name}.param_shapes({input_size}, {hidden_size}): {n} must have "
                            f"{expect}, got {shape!r}")
        if bias or n not in ("bias_ih", "bias_hh"):
            out[n] = tuple(shape)
    return out


def check_state_sizes(cell, w_hh):
    """``state_sizes(W_hh)``: one positive int per state."""
    sizes = _call(cell, "state_sizes", "", w_hh)
    if (not isinstance(sizes, (tuple, list)) or len(sizes) != cell.N_STATES
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes)):
        raise CellError(f"{cell.name}.state_sizes must return {cell.N_STATES} positive int(s), "
                        f"one per state {cell.STATES}, got {sizes!r}")
    return tuple(sizes)


def init_parameter(cell, kind, weight, hidden_size):
    _call(cell, "init_parameter", f" on {kind} {tuple(weight.shape)}", kind, weight, hidden_size)


def trusted(cell):
    """rnnkit's own cells: the test suite checks them, so layers skip the trial."""
    return type(cell).__module__.startswith("rnnkit.")


def as_cell(cell, who="Recurrent"):
    """The Cell instance ``cell`` stands for (an instance, or a subclass made without
    arguments), after check 1 (rnnkit's own cells: checked by the tests instead)."""
    cell = make(cell, who)
    if not trusted(cell):
        check_class(cell)
    return cell


def _call(cell, method, when, *args, **kw):
    try:
        return getattr(cell, method)(*args, **kw)
    except CellError:
        raise
    except Exception as e:
        raise CellError(f"{cell.name}.{method} failed{when}: {_line(e)}") from e


def _line(e):
    """An exception in one line: its type, the first line of its message and, where it was
    raised in a file of the user's (not rnnkit's, torch's or the standard library's), that
    file and line."""
    text = str(e).strip().splitlines()
    where = raised_at(e)
    return (f"{type(e).__name__}: {text[0]}" if text else type(e).__name__) + \
        (f" (at {where})" if where else "")


def raised_at(e, in_cell=False):
    """``file:line`` of the innermost frame of ``e``'s traceback in a file of the user's (not
    rnnkit's, torch's or the standard library's), or None; ``in_cell``: only frames of a Cell's
    methods, as ``file:line in Class.method``."""
    import sysconfig
    import traceback
    from pathlib import Path
    ours = Path(__file__).resolve().parents[1]
    libs = [Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "purelib", "platlib")]
    found = None
    for frame, line in traceback.walk_tb(e.__traceback__):
        name = frame.f_code.co_filename
        if name.startswith("<"):
            continue
        path = Path(name).resolve()
        cell = frame.f_locals.get("self")
        module = type(cell).__module__
        installed = isinstance(cell, Cell) and not (module == "rnnkit"
                                                    or module.startswith("rnnkit."))
        if path.is_relative_to(ours) or (not installed    # a cell package's own code counts
                                         and any(path.is_relative_to(p) for p in libs)):
            continue
        if not in_cell:
            found = f"{name}:{line}"
        elif isinstance(cell, Cell):
            found = f"{name}:{line} in {type(cell).__name__}.{frame.f_code.co_name}"
    return found


# ---------------------------------------------------------------- check 3: the trial
class _Trial:
    """Two steps of B = 2 rows, forward then backward, as the node runs them (time-major
    tokens, N = 4). ``w``: the layer's first weights {name: tensor}, params in PARAMS order."""

    B, T = 2, 2
    WHEN = " on a trial step (2 rows, the layer's first weights)"

    def __init__(self, cell, w):
        self.cell, self.name = cell, cell.name
        self.w_ih, self.w_hh = w["weight_ih"], w["weight_hh"]
        self.b_ih, self.b_hh = w.get("bias_ih"), w.get("bias_hh")
        self.params = tuple(w[n] for n in cell.PARAMS)
        g = torch.Generator().manual_seed(0)      # the global generator stays untouched
        self.rand = lambda *s: 0.5 * torch.randn(*s, generator=g).to(self.w_ih)   # noqa: E731

    def call(self, method, *args, **kw):
        return _call(self.cell, method, self.WHEN, *args, **kw)

    def rows(self, t):
        return slice(t * self.B, (t + 1) * self.B)

    def run(self):
        cell, B, N = self.cell, self.B, self.B * self.T
        sizes = check_state_sizes(cell, self.w_hh)
        x = self.rand(N, self.w_ih.shape[1])
        gi = x @ self.w_ih.t() + (0 if self.b_ih is None else self.b_ih)          # (N, G·H)
        gi_ref, b_ref = gi, self.b_hh
        if cell.FOLD_HH_BIAS and self.b_hh is not None:
            gi = gi + self.b_hh
        h0 = [self.rand(B, n) for n in sizes]
        S, cache = self.forward(gi.clone(), h0, sizes, N)
        self.against_reference(gi_ref, b_ref, h0, S, sizes)
        self.backward(cache, S, h0, sizes, N, gi.shape[1])

    def forward(self, gi, h0, sizes, N):
        cell = self.cell
        S = [gi.new_full((N, n), float("nan")) for n in sizes]                 # states per token
        cache = self.call("alloc_cache", N, tuple(sizes), gi, gi)
        self.per_token("alloc_cache", cache, N)
        b_step = None if cell.FOLD_HH_BIAS else self.b_hh
        w_hh_t = self.w_hh.t().contiguous()
        for t in range(self.T):
            r, p = self.rows(t), self.rows(t - 1)
            prev = tuple(h0) if t == 0 else tuple(s[p] for s in S)
            self.call("forward_step", gi[r], prev, prev[0], w_hh_t, b_step,
                      tuple(c[r] for c in cache), tuple(s[r] for s in S), self.params)
            for k, s in enumerate(S):
                if s[r].isnan().any():
                    raise CellError(f"{self.name}.forward_step must write every element of "
                                    f"out[{k}] (state {cell.STATES[k]}, shape {tuple(s[r].shape)})"
                                    f"{self.WHEN}; some were left unwritten or NaN")
        return S, cache

    def against_reference(self, gi, b_hh, h0, S, sizes):
        state = tuple(h0)
        for t in range(self.T):
            state = self.call("reference_step", gi[self.rows(t)], state, self.w_hh, b_hh,
                              params=self.params)
            want = [(self.B, n) for n in sizes]
            got = [tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                   for s in state] if isinstance(state, (tuple, list)) else type(state).__name__
            if not isinstance(state, (tuple, list)) or got != want:
                raise CellError(f"{self.name}.reference_step must return a tuple of "
                                f"{len(want)} state(s) of shapes {want}{self.WHEN}, got {got}")
            ours = S[0][self.rows(t)]
            if self.w_ih.dtype in (torch.float32, torch.float64) and not torch.allclose(
                    ours, state[0], rtol=1e-3, atol=1e-4):
                err = (ours - state[0]).abs().max().item()
                raise CellError(f"{self.name}.forward_step and reference_step disagree on h "
                                f"at step {t}{self.WHEN}: max |difference| {err:.3g}; one "
                                f"of them is wrong (rnnkit check-cell shows where), or draws "
                                f"random numbers (a cell's own dropout: the layer's "
                                f"recurrent_dropout= and zoneout= are the steps' own)")

    def backward(self, cache, S, h0, sizes, N, GH):
        cell, B = self.cell, self.B
        prev = [torch.cat([h, s[:N - B]]) for h, s in zip(h0, S)]              # (N, ·) each
        pre = self.call("prepare_backward", cache, S, prev, self.params)
        self.per_token("prepare_backward", pre, N)
        dS = [self.rand(N, n) for n in sizes]
        dG = S[0].new_full((N, GH), float("nan"))
        dGh = S[0].new_full((N, GH), float("nan")) if cell.SEPARATE_DGH else dG
        dh0 = [torch.zeros_like(h) for h in h0]
        for t in reversed(range(self.T)):
            r, p = self.rows(t), self.rows(t - 1)
            dprev = tuple(dh0) if t == 0 else tuple(d[p] for d in dS)
            self.call("backward_step", tuple(d[r] for d in dS), tuple(q[r] for q in pre),
                      self.w_hh, dG[r], dGh[r], dprev, dprev[0], self.params)
        for buf, what in ((dG, "dgi (δ input half)"), (dGh, "dgh (δ recurrent half)")):
            if buf.isnan().any():
                raise CellError(f"{self.name}.backward_step must write every element of {what}, "
                                f"shape (rows, {GH}){self.WHEN}; some were left unwritten or NaN")
        dw = self.call("weight_grad_hh", dGh, prev[0], cache, pre)
        self.same_shapes("weight_grad_hh", [dw], [self.w_hh], "W_hh")
        if cell.PARAMS:
            grads = self.call("param_grads", cache, pre, dG, dGh, dS, self.params)
            self.same_shapes("param_grads", grads, self.params, ", ".join(cell.PARAMS))

    def per_token(self, method, bufs, N):
        """The node splits these by token rows: a tuple of tensors (N, ·)."""
        ok = isinstance(bufs, (tuple, list)) and all(
            isinstance(b, torch.Tensor) and b.dim() >= 1 and b.shape[0] == N for b in bufs)
        if not ok:
            got = ([tuple(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__
                    for b in bufs] if isinstance(bufs, (tuple, list)) else type(bufs).__name__)
            raise CellError(f"{self.name}.{method} must return a tuple of per-token tensors "
                            f"(N={N}, ...){self.WHEN}, got {got}")
        self.same_dtype(method, [b for b in bufs if b.is_floating_point()], "buffers")

    def same_shapes(self, method, got, want, what):
        shapes = [tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
                  for g in (got if isinstance(got, (tuple, list)) else [got])]
        if shapes != [tuple(w.shape) for w in want]:
            raise CellError(f"{self.name}.{method} must return the gradient(s) of {what}, "
                            f"shape(s) {[tuple(w.shape) for w in want]}{self.WHEN}, got {shapes}")
        self.same_dtype(method, got if isinstance(got, (tuple, list)) else [got], "gradients")

    def same_dtype(self, method, tensors, what):
        """Floating tensors at least as precise as the layer's dtype: a float32 buffer in a
        float64 layer rounds its values at 1e-7 with no error of its own (check-cell called
        the maths wrong)."""
        bad = coarser(tensors, self.w_hh.dtype)
        if bad is not None:
            raise CellError(f"{self.name}.{method} must return {what} of the layer's dtype "
                            f"{self.w_hh.dtype} (made from the inputs: like.new_empty(...), not "
                            f"torch.empty(...)){self.WHEN}, got {bad}")


def coarser(tensors, dtype):
    """The first floating dtype among ``tensors`` less precise than ``dtype``, or None."""
    eps = torch.finfo(dtype).eps
    return next((t.dtype for t in tensors
                 if t.is_floating_point() and torch.finfo(t.dtype).eps > eps), None)


def trial(cell, weights):
    """Check 3: two steps forward and back through every method of ``cell`` on ``weights``
    ({name: tensor} of one layer-direction), without recording autograd."""
    if weights["weight_ih"].device.type == "meta":
        return
    with torch.no_grad():
        _Trial(cell, {n: w.detach() for n, w in weights.items()}).run()
