"""The compiled inference step shared with worker threads (rnnkit/kernels/pool.h): with
torch.get_num_threads() > 1 a step at small batch cuts each layer into chunks of hidden units
that any thread may take, and gives bit for bit what one thread gives, also with two callers at
once and in a forked child."""
import functools
import multiprocessing
import os
import subprocess
import sys
import threading

import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.decode.sampling import sample
from rnnkit.layers import fast_step
from rnnkit.models.language_model import LanguageModel, LMConfig

pytestmark = pytest.mark.skipif(not kernels.available(), reason="compiled kernels unavailable")
LAYERS = [(rnnkit.LSTM, {}), (rnnkit.GRU, {}), (rnnkit.RNN, {}),
          (rnnkit.RNN, {"nonlinearity": "relu"}), (functools.partial(rnnkit.Recurrent, "mgu"), {})]


@pytest.fixture
def threads():
    """Run the body at a given torch thread count, restored after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def steps(layer, x, threads_set, n):
    threads_set(n)
    with torch.no_grad():
        out, state = fast_step.step(layer, x[0], None)
        outs = [out]
        for t in range(1, x.shape[0]):
            out, state = fast_step.step(layer, x[t], state)
            outs.append(out)
    return torch.stack(outs), state


@pytest.fixture(autouse=True)
def always_share():
    """Every test here shares whenever it can (the default, "auto", may be running alone)."""
    with fast_step.sharing("always"):
        yield


def test_sharing_policy_is_checked():
    with pytest.raises(ValueError, match="auto, always, never"):
        with fast_step.sharing("sometimes"):
            pass


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("H", [37, 96])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("cls,kw", LAYERS, ids=["lstm", "gru", "rnn", "rnn-relu", "mgu"])
def test_threads_give_what_one_thread_gives(cls, kw, B, H, dtype, threads):
    torch.manual_seed(0)
    layer = cls(11, H, num_layers=2, **kw).to(dtype).eval()
    x = torch.randn(5, B, 11, dtype=dtype)
    one, one_state = steps(layer, x, threads, 1)
    for n in (2, 3):
        many, many_state = steps(layer, x, threads, n)
        assert torch.equal(one, many)
        for a, b in zip(one_state if isinstance(one_state, tuple) else (one_state,),
                        many_state if isinstance(many_state, tuple) else (many_state,)):
            assert torch.equal(a, b)


def test_workers_take_chunks_and_give_the_same_result(threads):
    """Many steps of a 256-unit stack at two threads: the workers compute some of the chunks
    (else the comparison above proves nothing), every step equal to one thread's."""
    torch.manual_seed(3)
    layer = rnnkit.LSTM(64, 256, num_layers=2).eval()
    x = torch.randn(300, 1, 64)
    want, _ = steps(layer, x, threads, 1)
    k = kernels.get(x)
    before = k.pool_worker_chunks()
    with fast_step.sharing("always"):
        got, _ = steps(layer, x, threads, 2)
    taken = k.pool_worker_chunks() - before
    assert torch.equal(got, want)
    if taken == 0:
        pytest.skip("the worker thread got no core during the run (a loaded machine)")


def lm(cell, hidden=48):
    torch.manual_seed(0)
    cfg = LMConfig(vocab_size=29, cell=cell, layers=2, hidden=hidden, embed=8)
    return LanguageModel(cfg).eval()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "mgu"])
def test_language_model_step_and_sampling_with_threads(cell, threads):
    model = lm(cell)
    run = lambda: torch.stack(list(sample(model, [[1], [2]], 150, seed=3, temperature=0.9)))
    threads(1)
    one = run()
    with torch.no_grad():
        one_logits, _ = model.step(torch.tensor([4, 5]), None)
    threads(2)
    assert torch.equal(run(), one)
    with torch.no_grad():
        assert torch.equal(model.step(torch.tensor([4, 5]), None)[0], one_logits)


def lm_steps(model, ids, state=None, edit=None):
    """Logits of stepping ``model`` through ids (T, B) from ``state``; edit(t, model, state)
    may change things between steps."""
    out = []
    with torch.no_grad():
        for t in range(ids.shape[0]):
            if edit is not None:
                state = edit(t, model, state)
            logits, state = model.step(ids[t], state)
            out.append(logits)
    return torch.stack(out), state


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("B", [1, 3])
def test_layer0_products_computed_ahead_are_taken_where_they_fit(cell, B, threads):
    """At two threads a language model's workers compute the next step's layer-0 h W_hh^T
    while Python runs; a step that continues the last one takes them (counted), and every step
    equals one thread's bit for bit, also where the state, W_hh of layer 0 or the batch
    changes between steps (then they are not taken)."""
    model = lm(cell, hidden=64)
    k = kernels.get(torch.zeros(()))
    ids = torch.randint(0, 29, (24, B))

    def edit(t, m, state):
        if t == 8:              # the state changed in place: products computed ahead are stale
            state = tuple(s.clone() for s in state) if isinstance(state, tuple) else state.clone()
            (state[0] if isinstance(state, tuple) else state)[0, 0, 0] += 0.5
        if t == 12:             # W_hh of layer 0 changed in place
            m.rnn.weight_hh_l0.mul_(0.9)
        if t == 16:             # another model steps in between
            m2.step(ids[0, :1], None)
        return state

    m2 = lm(cell, hidden=64)
    threads(1)
    want, _ = lm_steps(model, ids, edit=edit)
    model, m2 = lm(cell, hidden=64), lm(cell, hidden=64)
    threads(2)
    before = k.lm_spec_hits()
    got, _ = lm_steps(model, ids, edit=edit)
    assert torch.equal(got, want)
    assert k.lm_spec_hits() - before > 12       # taken on most of the 24 steps


def test_two_callers_at_once(threads):
    """Two Python threads stepping at the same time (ctypes releases the GIL): one shares the
    workers, the other runs its chunks alone; both get the one-thread result."""
    torch.manual_seed(1)
    layer = rnnkit.LSTM(11, 64, num_layers=2).eval()
    x = torch.randn(40, 1, 11)
    want, _ = steps(layer, x, threads, 1)
    threads(2)
    got, errors = [None, None], []

    def go(k):
        try:
            with torch.no_grad():
                state, outs = None, []
                for t in range(x.shape[0]):
                    out, state = fast_step.step(layer, x[t], state)
                    outs.append(out)
            got[k] = torch.stack(outs)
        except Exception as e:          # noqa: BLE001 (reported below)
            errors.append(e)

    workers = [threading.Thread(target=go, args=(k,)) for k in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert not errors and all(torch.equal(g, want) for g in got)


def test_two_language_models_stepped_at_once_by_two_callers(threads):
    """Two Python threads each stepping its own language model (ctypes releases the GIL): the
    products computed ahead belong to whoever holds the pool; each stream gets one thread's
    result bit for bit."""
    models = [lm("lstm", hidden=64), lm("gru", hidden=64)]
    ids = torch.randint(0, 29, (60, 1))
    threads(1)
    want = [lm_steps(m, ids)[0] for m in models]
    threads(2)
    got, errors = [None, None], []

    def go(k):
        try:
            got[k] = lm_steps(models[k], ids)[0]
        except Exception as e:          # noqa: BLE001 (reported below)
            errors.append(e)

    for _ in range(3):
        workers = [threading.Thread(target=go, args=(k,)) for k in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        assert not errors and all(torch.equal(g, w) for g, w in zip(got, want))


def _child(q):
    torch.set_num_threads(2)
    torch.manual_seed(2)
    layer = rnnkit.GRU(5, 40, num_layers=2).eval()
    with torch.no_grad():
        out, _ = fast_step.step(layer, torch.randn(1, 5), None)
    q.put(out.sum().item())


def test_a_forked_child_steps_without_the_parents_workers(threads):
    threads(2)
    layer = rnnkit.GRU(5, 40, num_layers=2).eval()
    with torch.no_grad():
        fast_step.step(layer, torch.randn(1, 5), None)      # the parent's workers exist
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    p.join(timeout=60)
    alive = p.is_alive()
    if alive:
        p.kill()
    assert not alive and p.exitcode == 0 and isinstance(q.get(timeout=5), float)


def test_a_bad_sharing_setting_warns_and_keeps_the_kernels():
    """RNNKIT_STEP_SHARING=bogus is a one-line warning; the kernels still load."""
    r = subprocess.run([sys.executable, "-c", "from rnnkit import kernels; "
                        "print(kernels.available())"], capture_output=True, text=True,
                       env=dict(os.environ, RNNKIT_STEP_SHARING="bogus"), timeout=600)
    assert r.returncode == 0 and r.stdout.strip() == "True"
    assert "RNNKIT_STEP_SHARING must be one of auto, always, never, got 'bogus'" in r.stderr


DELETE_WHILE_AHEAD = """
import gc, torch
from rnnkit.layers import fast_step
from rnnkit.models.language_model import LanguageModel, LMConfig
torch.set_num_threads(2)
with fast_step.sharing("always"), torch.no_grad():
    for i in range(30):
        model = LanguageModel(LMConfig(vocab_size=29, cell="lstm", layers=2, hidden=384,
                                       embed=8)).eval()
        _, state = model.step(torch.tensor([1]), None)
        _, state = model.step(torch.tensor([2]), state)        # workers now compute ahead
        if i % 2:
            model.rnn.weight_hh_l0.data = torch.zeros(4 * 384, 384)   # its old memory freed
        del model, state
        gc.collect()
        junk = torch.full((4 * 384, 384), 7.0)                 # reuse freed memory
print("ok")
"""


def test_weights_freed_while_workers_compute_ahead_are_never_read_freed():
    """A model deleted (or W_hh of layer 0 replaced) right after a step, while the workers
    compute the next step's products: the memory they read is kept until they are done."""
    out = subprocess.run([sys.executable, "-c", DELETE_WHILE_AHEAD], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
