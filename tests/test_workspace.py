"""The BPTT node's reused buffers: handed out again only when nothing can read them."""
import gc

import pytest
import torch

import rnnkit
from rnnkit.bptt import workspace
from rnnkit.bptt.workspace import Workspace


@pytest.fixture(autouse=True)
def _empty_pool(monkeypatch):
    """The tests' buffers are small: the pool takes every size here (its default passes the
    small ones to the allocator: test_small_buffers_bypass_the_pool)."""
    monkeypatch.setattr(Workspace, "SMALL", 1)
    workspace.clear()
    yield
    workspace.clear()


def test_small_buffers_bypass_the_pool(monkeypatch):
    monkeypatch.setattr(Workspace, "SMALL", 1 << 14)
    ws, like = Workspace(), torch.zeros(1)
    small = ws.take(4, 8, like)
    ws.give(small)
    assert ws.held_bytes() == 0
    big = ws.take(128, 128, like)
    ws.give(big)
    assert ws.held_bytes() == 128 * 128 * 4 and ws.take(128, 128, like).data_ptr() == big.data_ptr()


def test_take_reuses_a_given_buffer_that_fits_and_nothing_else():
    ws = Workspace()
    like = torch.zeros(1)
    a = ws.take(4, 8, like)
    ptr = a.data_ptr()
    ws.give(a)
    b = ws.take(3, 8, like)                    # fits (24 <= 32 <= 48): the same memory
    assert b.shape == (3, 8) and b.data_ptr() == ptr
    c = ws.take(3, 8, like)                    # the pool is empty again: fresh memory
    assert c.data_ptr() != ptr
    ws.give(b)
    assert ws.take(1, 8, like).data_ptr() != ptr               # 32 > 2·8: too big to hand out
    assert ws.take(4, 8, torch.zeros(1, dtype=torch.float64)).data_ptr() != ptr   # other dtype


def test_pool_keeps_at_most_max_bytes_oldest_dropped():
    ws = Workspace(max_bytes=3 * 400)
    like = torch.zeros(1)
    bufs = [ws.take(10, 10, like) for _ in range(5)]       # 400 bytes each
    ws.give(*bufs)
    assert ws.held_bytes() == 3 * 400
    kept = {ws.take(10, 10, like).data_ptr() for _ in range(3)}
    assert kept == {b.data_ptr() for b in bufs[2:]}


def _step(m, x, seed=3):
    torch.manual_seed(seed)
    out, (h, c) = m(x)[:2]
    (out.pow(2).sum() + c.sum()).backward()
    grads = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    return out.detach(), grads


@pytest.mark.parametrize("kw", [{}, {"layer_norm": True, "recurrent_dropout": 0.2, "zoneout": 0.1}])
def test_repeated_steps_reuse_buffers_and_give_the_same_results(kw):
    m = rnnkit.LSTM(4, 6, num_layers=2, **kw)
    x = torch.randn(5, 3, 4)
    first = _step(m, x)
    gc.collect()
    assert workspace.WORKSPACE.held_bytes() > 0            # the node gave its buffers back
    for _ in range(3):
        again = _step(m, x)
        torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_retained_graph_keeps_its_cache_while_other_steps_run():
    m = rnnkit.LSTM(4, 6, layer_norm=True)
    x = torch.randn(5, 3, 4)
    out, (h, c) = m(x)
    loss = out.pow(2).sum() + c.sum()
    loss.backward(retain_graph=True)
    once = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    for _ in range(3):                           # other steps take and give buffers meanwhile
        _step(m, torch.randn(5, 3, 4))
    loss.backward()                              # the retained graph's cache must be intact
    for p, g in zip(m.parameters(), once):
        torch.testing.assert_close(p.grad, g)


def test_inference_without_grad_does_not_grow_the_pool():
    m = rnnkit.LSTM(4, 6)
    x = torch.randn(50, 8, 4)
    with torch.no_grad():
        m(x)
        gc.collect()
        held = workspace.WORKSPACE.held_bytes()
        for _ in range(10):
            m(x)
        gc.collect()
    assert workspace.WORKSPACE.held_bytes() == held


@pytest.mark.parametrize("make", [lambda: rnnkit.GRU(5, 6), lambda: rnnkit.LSTM(5, 6, proj_size=3),
                                  lambda: rnnkit.RNN(5, 6, zoneout=0.1)],
                         ids=["gru", "lstm-proj", "rnn-zoneout"])
def test_a_step_under_inference_mode_leaves_no_buffer_training_cannot_write(make):
    """A validation pass under torch.inference_mode, then training: the buffers made in
    inference mode are inference tensors, which the next backward could not write into."""
    for t_inf in (2, 4, 8):
        for t_train in (3, 6, 8, 12):
            workspace.clear()
            torch.manual_seed(0)
            m = make()
            with torch.inference_mode():
                m.eval()(torch.randn(t_inf, 3, 5))
            gc.collect()
            out = m.train()(torch.randn(t_train, 3, 5))[0]
            out.pow(2).mean().backward()
            assert all(p.grad is not None for p in m.parameters())
