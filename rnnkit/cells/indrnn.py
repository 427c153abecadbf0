"""IndRNN: the independently recurrent network of Li, Li, Cook, Zhu & Gao (CVPR 2018).

Each unit sees only its own past: the recurrent weight is a vector u, not a matrix, so the
error a unit sends back in time is scaled by its own u_n and ReLU gate, step after step, and
can be kept from vanishing or exploding unit by unit (Li et al. train it over thousands of
steps). Equations (⊙ element-wise; W = W_ih (H, I), u = W_hh (H,))::

    a_t = W x_t + b + u ⊙ h_{t-1}
    h_t = relu(a_t)

Backward, one step (the recurrent Jacobian is diagonal: diag([a_t > 0] ⊙ u))::

    δa_t      = δh_t ⊙ [h_t > 0]                 relu'(a_t), read off h_t
    δh_{t-1} += δa_t ⊙ u                         ∂a_t/∂h_{t-1} = diag(u)
    δu        = Σ_t δa_t ⊙ h_{t-1}               ∂a_t/∂u = h_{t-1}, summed over all tokens

Over k steps unit n's error is multiplied by Π u_n [a > 0]: with u_n near 1 it neither vanishes
nor explodes, which is why u starts in [0, 1] here (Li et al. also bound |u_n| during training,
by a limit that depends on the sequence length; that constraint is left to the user's training
loop).

The layer has one bias b (``bias_ih``): a second one would add the same vector twice.
Shapes: b rows, H hidden, N tokens.
"""
import torch

from rnnkit.cells.base import Cell
from rnnkit.cells.fused import OnKernels, contiguous, fast_path, loop_plan


class IndRNN(Cell):
    """h_t = relu(W_ih x_t + b_ih + W_hh ⊙ h_{t-1}), W_hh a vector (H,)."""

    def param_shapes(self, input_size, hidden_size):
        H = hidden_size
        return {"weight_ih": (H, input_size), "weight_hh": (H,), "bias_ih": (H,)}

    def init_parameter(self, name, weight, hidden_size):
        if name == "weight_hh":
            weight.uniform_(0, 1)                                    # u_n in [0, 1]
        else:
            super().init_parameter(name, weight, hidden_size)

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        """h_t = relu(gi_t + u ⊙ h^r_{t-1}) into out[0] (w_hh_t is u itself: a vector)."""
        torch.addcmul(gi, hrec, w_hh_t, out=out[0]).relu_()         # (b, H)

    def prepare_backward(self, cache, states, prev, params):
        """relu'(a_t) = [h_t > 0] for all tokens at once."""
        h = states[0]
        return ((h > 0).to(h.dtype),)                                # (N, H)

    def backward_step(self, dstate, pre, w_hh, dgi, dgh, dprev, dhrec, params):
        torch.mul(dstate[0], pre[0], out=dgi)                        # δa_t = δh_t ⊙ relu'(a_t)
        dhrec.addcmul_(dgi, w_hh)                                    # δh_{t-1} += δa_t ⊙ u

    def weight_grad_hh(self, dgh, hrec, cache, pre):
        return (dgh * hrec).sum(0)                                   # δu = Σ_t δa_t ⊙ h^r_{t-1}

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        """The same step in plain autograd ops (the test oracle)."""
        hrec = state[0] if hrec is None else hrec
        return (torch.relu(gi + hrec * w_hh + (0 if b_hh is None else b_hh)),)


@fast_path(IndRNN)
class FusedIndRNN(OnKernels, IndRNN):
    """The same cell through its compiled time loops (rnnkit/kernels/indrnn.cpp: the shared loop
    with a diagonal recurrence, u ⊙ h^r in place of the GEMM); its Python steps run where the
    loop cannot (resets, zoneout)."""

    def forward_loop(self, sched, gi, S, cache, h0, w_hh_t, b_hh, mask, params):
        self.k.indrnn_fwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=loop_plan(sched),
                               H=S[0].shape[1], w_hh_t=w_hh_t.contiguous(), mask=contiguous(mask),
                               gi=gi.contiguous(), S_h=S[0], h0=h0[0].contiguous())

    def backward_loop(self, sched, dS, dG, dGh, cache, S, h0, dh0, w_hh, mask, params):
        self.k.indrnn_bwd_loop(gemm=self.k.gemm, n_steps=sched.T, plan=loop_plan(sched),
                               H=S[0].shape[1], w_hh=w_hh.contiguous(), mask=contiguous(mask),
                               S_h=S[0], dS_h=dS[0], dG=dG, dh0=dh0[0])
        return ()
