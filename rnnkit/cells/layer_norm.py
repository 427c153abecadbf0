"""Layer normalisation (Ba, Kiros & Hinton 2016) of one step's rows, with its derivative by hand.

    μ = mean(z),  σ = sqrt(var(z) + ε),  x̂ = (z - μ) / σ,  y = γ ⊙ x̂ + β      (over the last dim)

Backward, with δx̂ = δy ⊙ γ and D the normalised width::

    δz = (δx̂ - mean(δx̂) - x̂ ⊙ mean(δx̂ ⊙ x̂)) / σ
    δγ = Σ_rows δy ⊙ x̂,   δβ = Σ_rows δy       (summed over all tokens after the time loop)
"""
import torch

EPS = 1e-5


def ln_forward(z, gamma, beta, xhat, rstd):
    """y (b, D) from z (b, D); writes x̂ into xhat (b, D) and 1/σ into rstd (b, 1)."""
    var, mu = torch.var_mean(z, dim=1, keepdim=True, correction=0)
    torch.add(var, EPS, out=rstd).rsqrt_()                        # 1/σ
    torch.sub(z, mu, out=xhat).mul_(rstd)                         # x̂ = (z - μ)/σ
    return torch.addcmul(beta, xhat, gamma)                       # y = γ x̂ + β


def ln_backward(dy, xhat, rstd, gamma, out):
    """δz into out (b, D) from δy (b, D); out may be dy itself."""
    dxh = dy * gamma                                              # δx̂ = δy ⊙ γ
    m1 = dxh.mean(1, keepdim=True)
    m2 = (dxh * xhat).mean(1, keepdim=True)
    return torch.sub(dxh, m1, out=out).sub_(xhat * m2).mul_(rstd)


def reference_ln(z, gamma, beta):
    """The oracle: torch's own layer norm."""
    return torch.nn.functional.layer_norm(z, z.shape[-1:], gamma, beta, EPS)
