"""The trainer's AdamW: fused where torch has the kernel, the same update, exact on resume."""
import torch

from rnnkit.train.settings import adamw


def test_fused_adamw_matches_the_plain_update():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(300, 7, dtype=torch.float64))
    b = torch.nn.Parameter(a.detach().clone())
    fused, plain = adamw([a], 1e-2, 0.1), torch.optim.AdamW([b], lr=1e-2, weight_decay=0.1)
    assert fused.param_groups[0]["fused"] and not plain.param_groups[0]["fused"]
    for _ in range(20):
        g = torch.randn_like(a)
        a.grad, b.grad = g.clone(), g.clone()
        fused.step()
        plain.step()
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_a_resumed_run_keeps_the_optimizer_it_was_saved_with():
    p = torch.nn.Parameter(torch.randn(5))
    saved = torch.optim.AdamW([p], lr=1e-3).state_dict()       # a run from before the fused kernel
    opt = adamw([p], 1e-3, 0.0)
    opt.load_state_dict(saved)
    assert not opt.param_groups[0]["fused"]


def test_complex_parameters_fall_back_to_the_plain_update():
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.complex64))
    assert adamw([torch.nn.Parameter(torch.zeros(3)), p], 1e-3, 0.0).param_groups[0]["fused"] is None
