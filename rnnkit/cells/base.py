"""The cell contract: everything a recurrent cell gives rnnkit, and what rnnkit does with it.

A cell is the maths of one time step and its derivative, written by hand. rnnkit supplies the
rest (:mod:`rnnkit.bptt.function`): the time loop, the input half of every step formed for all
tokens in one matmul before it, the state bookkeeping of packed and reversed sequences, the
loop-level options (recurrent dropout, zoneout, resets, per-step outputs), the weight gradients
formed over all tokens after it; and the layer (:class:`rnnkit.Recurrent`) stacks, reverses and
masks it. rnnkit's own RNN, LSTM, GRU and their variants are cells of this contract.

The step sees the pre-activations split in two halves::

    G_i = x_t W_ih^T + b_ih (+ b_hh where it folds)      the input half, (b, G·H): given
    h^r = h_{t-1} (⊙ the recurrent-dropout mask)          what the recurrent weights multiply

Required (a subclass must define them):

- ``forward_step``: the states of step t from its input half and the states entering it;
- ``backward_step``: δ(input half) and the δ(states entering the step) of one step, by hand;
- ``reference_step``: the same forward in plain autograd ops, the oracle the backward is
  checked against (``rnnkit check-cell``, the tests).

Declared, with defaults (class attributes):

- ``N_GATES`` (1): the input half is N_GATES·H wide (W_ih is (N_GATES·H, I));
- ``STATES`` (("h",)): names of the states carried between steps, h first (h is the output);
  ``N_STATES`` follows from it;
- ``PARAMS`` (()): names of the cell's own parameters besides W_ih, W_hh, b_ih, b_hh, handed
  to every method as ``params`` in this order;
- ``FOLD_HH_BIAS`` (True): b_hh adds to the pre-activation unchanged and is folded into the
  input half; False: the step receives it as ``b_hh``;
- ``SEPARATE_DGH`` (False): the recurrent half's gradient differs from the input half's and
  backward_step writes it into ``dgh`` (else dgh is dgi);
- ``TAKES_GI`` (False): alloc_cache may return the input-half buffer itself as its first buffer
  and work on it in place.

Optional (defaults here):

- ``param_shapes`` / ``init_parameter``: the parameters of one layer-direction, their shapes
  and initialisation (default: torch.nn's W_ih, W_hh, b_ih, b_hh, U(-1/√H, 1/√H));
- ``state_sizes``: each state's width (default: all H);
- ``alloc_cache``: per-token buffers the forward fills and the backward reads (default: none);
- ``prepare_backward``: the step-independent factors of the backward, for all tokens at once;
- ``weight_grad_hh``: δW_hh from all tokens (default: δ(recurrent half)^T h^r, one matmul);
- ``param_grads``: the gradients of ``PARAMS`` (required when PARAMS is not empty);
- ``layer_norm``: the layer-normalised variant of the cell, for ``layer_norm=True`` (default:
  none, and the layer refuses the option).

Shapes: b rows active at the step, H hidden, G = N_GATES, N tokens (all steps' rows).
:mod:`rnnkit.cells.validate` checks a cell against this contract when a layer is built.
"""
import math

from torch import nn


class CellError(ValueError):
    """A cell that breaks the contract: the message names the cell, the method, what was
    expected and what came."""


class Cell:
    N_GATES = 1           # rows of W_ih are N_GATES · H
    STATES = ("h",)       # states carried between steps: ("h",) or ("h", "c"), h first
    N_STATES = 1          # len(STATES), kept in step by __init_subclass__
    FOLD_HH_BIAS = True   # b_hh adds to the pre-activation unchanged and folds into the input half
    SEPARATE_DGH = False  # the recurrent half's gradient differs from the input half's
    PARAMS = ()           # the cell's own per-layer parameters (e.g. layer-norm gains)
    TAKES_GI = False      # the cache's first buffer is the input-half buffer itself, updated in place
    CACHED_GATES = True   # the cache's first buffer holds the gate activations return_sequences
    #                       shows; False: the step's own new state does (a vanilla cell's h̃_t)

    REQUIRED = ("forward_step", "backward_step", "reference_step")

    def __init_subclass__(cls, **kwargs):
        """STATES and N_STATES say the same thing: a class may declare either."""
        super().__init_subclass__(**kwargs)
        if "STATES" in cls.__dict__:
            cls.N_STATES = len(cls.STATES)
        elif "N_STATES" in cls.__dict__ and isinstance(cls.N_STATES, int):
            cls.STATES = ("h", "c", *(f"s{k}" for k in range(2, cls.N_STATES)))[:cls.N_STATES]

    @property
    def name(self):
        """The cell's name in messages: its class name."""
        return type(self).__name__

    # ------------------------------------------------------------ parameters and states
    def param_shapes(self, input_size, hidden_size):
        """{name: shape} of one layer-direction's parameters, in the order they are made.

        ``weight_ih`` (N_GATES·H, I) and ``weight_hh`` are required; ``bias_ih`` and ``bias_hh``
        (N_GATES·H,) are optional (and dropped with bias=False); every name in PARAMS must
        appear. W_hh may have any shape the cell's steps work with (IndRNN: a vector (H,)).
        The layer names them ``{name}_l{layer}`` (``..._reverse``), as torch.nn does."""
        GH = self.N_GATES * hidden_size
        return {"weight_ih": (GH, input_size), "weight_hh": (GH, hidden_size),
                "bias_ih": (GH,), "bias_hh": (GH,)}

    def init_parameter(self, name, weight, hidden_size):
        """Initialise one parameter in place (under no_grad): U(-1/√H, 1/√H), as torch.nn."""
        k = 1.0 / math.sqrt(hidden_size)
        nn.init.uniform_(weight, -k, k)

    def state_sizes(self, w_hh):
        """Width of each state; all H (W_hh's last dimension) unless the cell says otherwise."""
        return (w_hh.shape[-1],) * self.N_STATES

    def layer_norm(self):
        """The layer-normalised variant of this cell (``layer_norm=True``), or None."""
        return None

    # ------------------------------------------------------------ the forward
    def alloc_cache(self, n, sizes, like, gi):
        """Per-token buffers (N, ·) the forward fills and the backward reads; sizes: the states'.
        Make them with ``like.new_empty(n, d)`` (the BPTT node passes a workspace taker there).
        A cell with TAKES_GI may return gi (N, G·H) as its first buffer and work on it in place
        (the input half is then added to, not copied: one pass less per step). The first buffer
        is what ``return_sequences="all"`` reports as the gates."""
        return ()

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        """Required. gi (b, G·H) the input half; prev: the states entering the step (b, ·) each;
        hrec: h_{t-1} as it enters the recurrent matmul (prev[0], or its dropped-out copy);
        w_hh_t: W_hh transposed (contiguous); b_hh: None where it folds; cache: this step's rows
        of the alloc_cache buffers; out: one (b, ·) view per state, to write the new states
        into (write every element); params: the PARAMS tensors."""
        raise NotImplementedError

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        """Required. The same step in plain autograd ops, written from the equations: returns the
        new states (a tuple of N_STATES tensors (b, ·)). gi holds x_t W_ih^T + b_ih; b_hh is added
        here (None: no bias); hrec: as in forward_step, None meaning state[0]."""
        raise NotImplementedError

    # ------------------------------------------------------------ the backward
    def prepare_backward(self, cache, states, prev, params):
        """Step-independent factors of the backward, for all N tokens at once: a tuple of
        (N, ·) tensors, each step sees its rows. states: the states the cell produced (N, ·)
        each; prev: the states entering every token's step (N, ·) each."""
        return ()

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        """Required. dstate: δ(states of the step) (b, ·) each, from the outputs and later
        steps; leave there the total (add the step's own paths between states in place; never
        scratch): gradient telemetry and param_grads read it. pre: this step's rows of
        prepare_backward's tensors. Write δ(input half) into dgi
        (b, G·H), and δ(recurrent half) into dgh when SEPARATE_DGH; add δ(states entering the
        step) into dprev and δh^r into dhrec (which may be dprev[0] itself)."""
        raise NotImplementedError

    def weight_grad_hh(self, dgh, hrec, cache, pre):
        """δW_hh = Σ_t δ(recurrent half)_t^T h^r_{t-1}: one matmul over all tokens; dgh (N, G·H),
        hrec (N, H). Returns a tensor of W_hh's shape."""
        return dgh.t() @ hrec

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        """Gradients of ``PARAMS``, one per name and of its shape (after the reverse loop, from
        whole-sequence buffers; dS holds δ of the states the cell itself produced, before any
        zoneout mixing)."""
        return ()


CellMath = Cell           # the name the cells had before the contract was public
