"""The global gradient norm and clipping of every training step, in float64."""
import math

import torch


def clip_gradients(parameters, max_norm):
    """The gradients' global L2 norm, taken in float64 (float32 squares overflow past about
    1.8e19: a finite gradient read as inf, and its step skipped where it should be clipped),
    and the gradients scaled to ``max_norm`` where it is finite and above it. Returns the norm
    before clipping (nan or inf where an element is not finite)."""
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return 0.0
    device = params[0].grad.device
    norm = torch.linalg.vector_norm(torch.stack([
        torch.linalg.vector_norm(p.grad.detach(), dtype=torch.float64).to(device)
        for p in params]))
    if math.isfinite(max_norm) and bool(torch.isfinite(norm)) and float(norm) > max_norm:
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
    return float(norm)
