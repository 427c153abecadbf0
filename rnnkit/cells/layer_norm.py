"""Layer normalisation (Ba, Kiros & Hinton 2016) of one step's rows, with its derivative by hand.

    μ = mean(z),  σ = sqrt(var(z) + ε),  x̂ = (z - μ) / σ,  y = γ ⊙ x̂ + β      (over the last dim)

Backward, with δx̂ = δy ⊙ γ and D the normalised width::

    δz = (δx̂ - mean(δx̂) - x̂ ⊙ mean(δx̂ ⊙ x̂)) / σ
    δγ = Σ_rows δy ⊙ x̂,   δβ = Σ_rows δy       (summed over all tokens after the time loop)
"""
import torch

EPS = 1e-5


def ln_forward(z, gamma, beta, mu, rstd):
    """y (b, D) from z (b, D), by torch's own layer-norm op; records μ and 1/σ (b, 1) so the
    backward can form x̂ for all tokens at once (:func:`ln_normalised`)."""
    y, m, r = torch.native_layer_norm(z, z.shape[-1:], gamma, beta, EPS)
    mu.copy_(m)
    rstd.copy_(r)
    return y


def ln_normalised(z, mu, rstd, out=None):
    """x̂ = (z - μ) / σ, for any number of rows at once (out may be z itself)."""
    return torch.sub(z, mu, out=out).mul_(rstd)


def ln_backward(dy, xhat, rstd, gamma, out):
    """δz into out (b, D) from δy (b, D); out may be dy itself."""
    dxh = dy * gamma                                              # δx̂ = δy ⊙ γ
    m1 = dxh.mean(1, keepdim=True)
    m2 = (dxh * xhat).mean(1, keepdim=True)
    return torch.sub(dxh, m1, out=out).sub_(xhat * m2).mul_(rstd)


def reference_ln(z, gamma, beta):
    """The oracle: torch's own layer norm."""
    return torch.nn.functional.layer_norm(z, z.shape[-1:], gamma, beta, EPS)


class NormParams:
    """The parameters a layer-normalised cell adds (its ``PARAMS``): gains γ (``..._weight``,
    starting at 1) and biases β (``..._bias``, starting at 0), as wide as the gates for the
    recurrent half (``ln_hh_...``: G·H) and as the cell state otherwise (``ln_c_...``: H)."""

    def param_shapes(self, input_size, hidden_size):
        shapes = super().param_shapes(input_size, hidden_size)
        G = self.N_GATES
        shapes.update({n: ((G if "_hh_" in n else 1) * hidden_size,) for n in self.PARAMS})
        return shapes

    def init_parameter(self, name, weight, hidden_size):
        if name not in self.PARAMS:
            return super().init_parameter(name, weight, hidden_size)
        (torch.nn.init.ones_ if name.endswith("_weight") else torch.nn.init.zeros_)(weight)

    def layer_norm(self):
        return None           # normalised already
