"""Batch norm for padded sequences of feature maps, the same in one process or several.

``torch.nn.BatchNorm2d`` in training takes its statistics over every position of the batch: the
zero columns that pad the shorter sequences count too, so an example's output depends on how
long the others in its batch are; and under ``DistributedDataParallel`` each process takes them
over its own share only (``torch.nn.SyncBatchNorm`` shares them, on GPUs only). Here, per channel
c, over the valid positions V of the whole batch (every row f, the columns t below each
example's length), summed over the processes of a data-parallel run:

    n = |V|,   μ_c = Σ_V x / n,   σ²_c = Σ_V x² / n − μ_c²
    y = γ_c (x − μ_c) / sqrt(σ²_c + ε) + β_c

The three sums are all-reduced with autograd (``torch.distributed.nn.functional.all_reduce``),
so the gradient is that of the whole batch's statistics. The running estimates are updated as
``BatchNorm2d`` updates them (momentum, σ² unbiased by n / (n − 1)); in evaluation they are used
as there. Parameters and buffers keep BatchNorm2d's names, so its state_dicts load.
"""
import torch
from torch import nn


def _sharing():
    """Whether a data-parallel run's processes should share the statistics."""
    import torch.distributed as dist
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics cover only the valid columns and every process
    of a data-parallel run. ``forward(x (B, C, F, T), lengths (B,) or None)``."""

    def forward(self, x, lengths=None):
        if not self.training:
            return super().forward(x)
        B, C, Fh, T = x.shape
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=x.device)
        m = (torch.arange(T, device=x.device) < lengths[:, None]).to(x.dtype)   # (B, T)
        m = m[:, None, None, :]                                                  # (B, 1, 1, T)
        n = (m.sum() * Fh).reshape(1)
        sums = torch.cat([(x * m).sum((0, 2, 3)), (x * x * m).sum((0, 2, 3)), n])   # (2C + 1,)
        if _sharing():
            from torch.distributed.nn.functional import all_reduce
            sums = all_reduce(sums)
        s1, s2, n = sums[:C], sums[C:2 * C], sums[2 * C]
        n = n.clamp_min(1)
        mean = s1 / n
        var = (s2 / n - mean * mean).clamp_min(0)                                # biased
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None \
                    else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (n / (n - 1).clamp_min(1))
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        y = (x - mean[:, None, None]) * torch.rsqrt(var + self.eps)[:, None, None]
        if self.affine:
            y = y * self.weight[:, None, None] + self.bias[:, None, None]
        return y
