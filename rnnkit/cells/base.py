"""What the BPTT kernel asks of a cell, and the defaults most cells share.

A cell supplies the maths of one step and its derivative; :mod:`rnnkit.bptt.function` supplies
the time loop, the state bookkeeping and the loop-level options. Shapes: b rows active at the
step, H hidden, G gates, N tokens.
"""


class CellMath:
    N_STATES = 1          # states carried between steps: (h,) or (h, c)
    N_GATES = 1           # rows of W_ih / W_hh are N_GATES · H
    FOLD_HH_BIAS = True   # b_hh adds to the pre-activation unchanged and folds into the input half
    SEPARATE_DGH = False  # the recurrent half's gradient differs from the input half's
    PARAMS = ()           # extra per-layer parameters the step uses (e.g. layer-norm gains)
    TAKES_GI = False      # the cache's first buffer is the input-half buffer itself, updated in place

    def state_sizes(self, w_hh):
        """Width of each state; all H = W_hh's columns unless the cell says otherwise."""
        return (w_hh.shape[1],) * self.N_STATES

    def alloc_cache(self, n, sizes, like, gi):
        """Per-token buffers (N, ·) the forward fills and the backward reads; sizes: the states'.
        Make them with ``like.new_empty(n, d)`` (the BPTT node passes a workspace taker there).
        A cell with TAKES_GI may return gi (N, G·H) as its first buffer and work on it in place
        (the input half is then added to, not copied: one pass less per step)."""
        return ()

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        """gi (b, G·H) input half; prev: states entering the step; hrec: h_{t-1} as it enters the
        recurrent matmul (prev[0], or its dropped-out copy); cache, out: this step's views."""
        raise NotImplementedError

    def prepare_backward(self, cache, states, prev, params):
        """Step-independent factors of the backward, for all N tokens at once."""
        return ()

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        """Write δ(input half) into dgi (and δ(recurrent half) into dgh when SEPARATE_DGH);
        add δ(states entering the step) into dprev and δhrec into dhrec."""
        raise NotImplementedError

    def weight_grad_hh(self, dgh, hrec, cache, pre):
        """δW_hh = Σ_t δ(recurrent half)_t^T h^r_{t-1}: one matmul over all tokens."""
        return dgh.t() @ hrec

    def param_grads(self, cache, pre, dG, dGh, dS, params):
        """Gradients of ``PARAMS`` (after the reverse loop, from whole-sequence buffers; dS holds
        δ of the states the cell itself produced, before any zoneout mixing)."""
        return ()
