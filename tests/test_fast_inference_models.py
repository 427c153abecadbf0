"""The models' steps on the inference step (rnnkit.layers.fast_step, rnnkit.layers.fast_lm):
a language model's whole step and sampling loop in one call, seq2seq, conditional and forecast
steps, sampling and beam search give what they gave on the layers' forward."""
import pytest
import torch

from rnnkit.decode import beam_search, sample, sampling
from rnnkit.layers import fast_step
from rnnkit.models import LanguageModel, LMConfig
from rnnkit.models.conditional import CondConfig, ConditionalGenerator
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from test_fast_inference import assert_same

def both_paths(fn):
    """fn() through the fast step and through the layers' forward."""
    with torch.no_grad():
        fast = fn()
        with fast_step.disabled():
            slow = fn()
    return fast, slow


def assert_steps_match_forward(model, x, dtype=torch.float32, state=None):
    """The model's steps over x (B, T), from ``state``, give its forward's logits at each step;
    the last state."""
    want, _ = model(x)                                                        # (B, T, V)
    for t in range(x.shape[1]):
        logits, state = model.step(x[:, t], state)
        assert_same(logits, want[:, t], dtype)
    return state


def lm(cell, dtype=torch.float32, **kw):
    torch.manual_seed(0)
    kw = {"vocab_size": 13, "cell": cell, "layers": 2, "hidden": 16, "embed": 8, **kw}
    return LanguageModel(LMConfig(**kw)).to(dtype).eval()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "mgu"])
def test_lm_step_equals_forward(cell, dtype):
    model = lm(cell, dtype)
    x = torch.randint(0, 13, (3, 6))
    with torch.no_grad():
        state = assert_steps_match_forward(model, x, dtype, model.init_state(3))
        assert_same(state, model(x)[1], dtype)


@pytest.mark.parametrize("kw", [dict(tie="yes", embed=16), dict(softmax="adaptive")],
                         ids=["tied", "adaptive"])
def test_lm_step_tied_and_adaptive_softmax(kw):
    model = lm("lstm", **kw)
    x = torch.randint(0, 13, (2, 4))
    with torch.no_grad():
        assert_steps_match_forward(model, x)


def test_lm_step_bad_token_is_an_index_error():
    model = lm("lstm")
    with torch.no_grad(), pytest.raises(IndexError, match="outside the vocabulary"):
        model.step(torch.tensor([3, 13]), model.init_state(2))


def test_lm_step_records_autograd_when_asked():
    model = lm("gru")
    logits, _ = model.step(torch.tensor([1, 2]), model.init_state(2))
    logits.sum().backward()
    assert model.rnn.weight_hh_l1.grad is not None


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sampling_and_beam_search_unchanged(cell):
    model = lm(cell)
    fast, slow = both_paths(lambda: [int(x) for x in sample(model, [1, 2], 30, 0.9, seed=3)])
    assert fast == slow
    fast, slow = both_paths(lambda: [int(x) for x in sample(model, [1], 20, 0.0)])
    assert fast == slow
    fast, slow = both_paths(lambda: beam_search(model, [4], 5, 12, eos_id=0, n_best=3))
    assert [ids for ids, _ in fast] == [ids for ids, _ in slow]
    for (_, a), (_, b) in zip(fast, slow):
        assert a == pytest.approx(b, abs=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_seq2seq_step_and_translation_unchanged(cell):
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(src_vocab=11, tgt_vocab=9, cell=cell, embed=6, enc_hidden=8,
                                  hidden=10, dec_layers=2)).eval()
    src, lengths = torch.randint(1, 11, (3, 5)), torch.tensor([5, 3, 4])
    tgt = torch.randint(1, 9, (3, 6))
    fast, slow = both_paths(lambda: model(src, lengths, tgt))
    assert_same(fast, slow, torch.float32)
    one = (src[:1], lengths[:1])
    fast, slow = both_paths(lambda: beam_search(model, [1], 5, 10, eos_id=2, n_best=2,
                                                state=model.encode(*one)))
    assert [ids for ids, _ in fast] == [ids for ids, _ in slow]


def test_conditional_generator_step_unchanged():
    torch.manual_seed(0)
    model = ConditionalGenerator(CondConfig(vocab_size=9, n_classes=3, layers=2, hidden=12,
                                            embed=6, cond_size=5)).eval()
    x = torch.randint(0, 9, (3, 5))

    def run():
        state, out = model.condition(torch.tensor([0, 2, 1])), []
        for t in range(5):
            logits, state = model.step(x[:, t], state)
            out.append(logits)
        return torch.stack(out, 1), state["rnn"]
    fast, slow = both_paths(run)
    assert_same(fast, slow, torch.float32)
    with torch.no_grad():
        want, _ = model(x, model.condition(torch.tensor([0, 2, 1])))
    assert_same(fast[0], want, torch.float32)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_autoregressive_forecast_unchanged(cell):
    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig(features=2, mode="autoregressive", cell=cell,
                                        hidden=12)).eval()
    z = torch.randn(3, 7, 2)
    fast, slow = both_paths(lambda: model.forecast(z, 5))
    assert fast.shape == (3, 5, 2)
    assert_same(fast, slow, torch.float32)


def test_lm_step_after_the_model_changes_dtype_or_weights():
    model = lm("lstm")
    x = torch.randint(0, 13, (2, 3))
    with torch.no_grad():
        model.step(x[:, 0], None)
        model.head.weight.mul_(3)                                   # in place: same address
        model.double()                                              # new tensors everywhere
        assert_steps_match_forward(model, x, torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "mgu"])
@pytest.mark.parametrize("kw", [dict(temperature=0.9), dict(temperature=1.2, top_k=4),
                                dict(temperature=1.0, top_p=0.8), dict(temperature=0.0)],
                         ids=["t", "top-k", "top-p", "greedy"])
def test_compiled_sampling_loop_draws_what_python_draws(cell, dtype, kw):
    """rnnkit.decode.sample through the model's compiled loop (fast_lm.lm_sample) and
    through pick + step in Python: the same tokens from the same seed, over several chunks
    and a batch of sequences, stopping where every row has emitted the stop token."""
    model = lm(cell, dtype)
    with torch.no_grad():
        logits, state = model.step(torch.tensor([1, 2, 3]), None)
        assert model.sample_steps(logits, state, torch.rand(5, 3, dtype=torch.float64),
                                  0.9, None, None, None, None) is not None   # the loop runs
    n = sampling.CHUNK * 2 + 7
    run = lambda **more: torch.stack(list(sample(model, [[1], [2], [5]], n, seed=4, **kw,
                                                 **more)))
    fast, slow = both_paths(run)
    assert fast.shape == (n, 3) and torch.equal(fast, slow)
    stop = int(fast.flatten().mode().values)                  # a token every row is likely to emit
    first = [(col == stop).nonzero() for col in fast.T]
    stopped, slow_stopped = both_paths(lambda: run(stop_id=stop))
    assert torch.equal(stopped, slow_stopped)
    if all(len(f) for f in first):                            # ends once every row has emitted it
        assert len(stopped) == max(int(f[0]) for f in first) + 1 < n
        assert torch.equal(stopped, fast[:len(stopped)])


def test_input_table_follows_the_weights_it_is_made_of():
    """Layer 0's token table (b_ih + emb W_ih^T) is rebuilt when the embedding or W_ih
    changes in place (same addresses, new versions)."""
    model = lm("lstm")
    x = torch.randint(0, 13, (2, 3))
    with torch.no_grad():
        for change in (lambda: model.embed.weight.mul_(2), lambda: model.rnn.weight_ih_l0.add_(1),
                       lambda: model.rnn.bias_ih_l0.sub_(1)):
            model.step(x[:, 0], None)
            change()
            assert_steps_match_forward(model, x)


def test_lm_step_checks_a_state_again_when_the_batch_changes():
    """The state lm_step returned last is trusted for the next step of the same batch only;
    with another batch size it is checked (the layer's own error, not a wild read)."""
    model = lm("lstm")
    with torch.no_grad():
        _, state = model.step(torch.tensor([1, 2]), None)
        model.step(torch.tensor([3, 4]), state)
        with pytest.raises((ValueError, RuntimeError)):
            model.step(torch.tensor([1, 2, 3]), state)


def test_lm_step_sees_a_weight_moved_between_steps_of_one_stream():
    """A parameter given new memory (``.data =``) between two steps of one stream: the next
    step reads the new weights (the plan of the last call is checked against every address)."""
    model = lm("lstm")
    x = torch.randint(0, 13, (2, 4))
    with torch.no_grad():
        _, state = model.step(x[:, 0], None)
        _, state = model.step(x[:, 1], state)
        _, before = model(x[:, :2])
        model.rnn.weight_hh_l1.data = model.rnn.weight_hh_l1.data * 2    # a new address
        model.head.bias.data = model.head.bias.data + 1
        ref = model.rnn.weight_hh_l1
        want, _ = model(x[:, 2:], before)
        for t in range(2):
            logits, state = model.step(x[:, 2 + t], state)
            assert_same(logits, want[:, t], torch.float32)
        assert model.rnn.weight_hh_l1 is ref


def test_lm_step_two_models_in_turn():
    """Two models stepped in turn (the last-used plan changes hands every call) each get
    their own results."""
    a, b = lm("lstm"), lm("gru")
    x = torch.randint(0, 13, (2, 3))
    with torch.no_grad():
        want_a, want_b = a(x)[0], b(x)[0]
        sa = sb = None
        for t in range(3):
            la, sa = a.step(x[:, t], sa)
            lb, sb = b.step(x[:, t], sb)
            assert_same(la, want_a[:, t], torch.float32)
            assert_same(lb, want_b[:, t], torch.float32)


def test_step_refuses_a_bidirectional_layer_and_other_shapes():
    """A bidirectional layer stepped one step at a time would give a reverse half that saw one
    step (silently another result than forward); it is refused, as is x of 3 dimensions (the
    message names the shape given)."""
    from rnnkit import GRU
    from rnnkit.layers.errors import InputError
    with pytest.raises(InputError, match="bidirectional layer cannot run one step"):
        fast_step.step(GRU(3, 4, bidirectional=True).eval(), torch.randn(2, 3))
    with pytest.raises(InputError, match=r"x of shape \(batch, 3\) or \(3,\), got shape \(1, 2, 3\)"):
        fast_step.step(GRU(3, 4).eval(), torch.randn(1, 2, 3))
    h, state = fast_step.step(GRU(3, 4).eval(), torch.randn(3))       # unbatched: (H,)
    assert h.shape == (4,) and state.shape == (1, 4)


@pytest.mark.parametrize("kw, said", [
    ({"temperature": -1.0}, "temperature must be a finite number >= 0"),
    ({"temperature": float("nan")}, "temperature must be"),
    ({"temperature": float("inf")}, "temperature must be"),
    ({"top_k": -2}, "top_k must be a count"),
    ({"top_k": 2.5}, "top_k must be a count"),
    ({"top_p": 1.5}, "top_p must be a number in"),
    ({"top_p": float("nan")}, "top_p must be"),
    ({"length": -1}, "length must be a count"),
    ({"seed": "a"}, "seed must be an integer"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"seed": True}, "seed must be an integer"),
    ({"stop_id": 2.0}, "stop_id must be a token id"),
])
def test_sampling_options_are_checked_before_the_first_token_on_every_path(kw, said):
    """The compiled sampling loop took a negative or NaN temperature the Python path refused;
    now both refuse it when sample() is called."""
    model = lm("lstm").eval()
    args = {"length": 5, "seed": 0, **kw}
    length = args.pop("length")
    with pytest.raises(ValueError, match=said):
        sample(model, [1, 2], length, **args)
    with fast_step.disabled(), pytest.raises(ValueError, match=said):
        sample(model, [1, 2], length, **args)


def test_sampling_takes_numpy_integers_and_refuses_float_primes_and_foreign_stop_ids():
    """A seed of numpy's was a TypeError inside torch at the first token; a float prime was cut
    to whole ids (beam search refused it); a stop id past the vocabulary never stopped."""
    np = pytest.importorskip("numpy")
    model = lm("lstm").eval()
    mine = torch.stack(list(sample(model, [1, 2], 6, seed=np.int64(3), stop_id=np.int32(1))))
    assert torch.equal(mine, torch.stack(list(sample(model, [1, 2], 6, seed=3, stop_id=1))))
    with pytest.raises(TypeError, match="prime_ids must be integer token ids"):
        next(sample(model, [1.5, 2.0], 5, seed=0))
    with pytest.raises(ValueError, match=r"stop_id must be a token id in \[0, "):
        next(sample(model, [1, 2], 5, seed=0, stop_id=10_000))


@pytest.mark.parametrize("write", ["embed", "w_ih", "w_hh"])
def test_sampling_sees_weights_written_through_data(write):
    """A write through .data keeps the version counter, which the compiled step's table (and
    the products it computes ahead) were keyed on: sampling after one followed the old weights.
    sample() checks the weights' bytes first, so both paths draw the same text again."""
    model = lm("lstm").eval()
    list(sample(model, [1, 2], 20, seed=0))                     # the plan and its table exist
    new = {"embed": model.embed.weight, "w_ih": model.rnn.weight_ih_l0,
           "w_hh": model.rnn.weight_hh_l0}[write]
    new.data.mul_(-2.0)
    fast = torch.stack(list(sample(model, [1, 2], 40, seed=1)))
    with fast_step.disabled():
        slow = torch.stack(list(sample(model, [1, 2], 40, seed=1)))
    assert torch.equal(fast, slow)


def test_lm_step_with_a_head_bias_of_another_shape_is_torchs_error():
    """The one-call step read the head's bias by the vocabulary's size: a bias replaced by one
    of another shape was read past its end; torch's Linear refuses it."""
    model = lm("gru")
    model.head.bias = torch.nn.Parameter(torch.zeros(5))
    with torch.no_grad(), pytest.raises(RuntimeError):
        model.step(torch.tensor([1, 2]), None)


def test_lm_step_with_a_head_bias_replaced_at_the_same_address_is_torchs_error():
    model = lm("gru")
    with torch.no_grad():
        model.step(torch.tensor([1, 2]), None)
        model.head.bias = torch.nn.Parameter(model.head.bias.data[:5])
        with pytest.raises(RuntimeError):
            model.step(torch.tensor([1, 2]), None)


@pytest.mark.parametrize("threads", [1, 2])
def test_lm_step_sees_a_fused_optimizer_step(threads):
    """A fused AdamW writes the weights without bumping their version counters: the layer-0
    table and (at two threads) the product computed ahead stayed the old weights' (0.025 off
    after one step); torch's post-step hook tells the plans."""
    model = lm("lstm", layers=1)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, fused=True)
    x = torch.randint(0, 13, (1, 3))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with fast_step.sharing("always"):
            with torch.no_grad():
                _, state = model.step(x[:, 0], None)
            for p in model.parameters():
                p.grad = torch.randn_like(p)
            versions = [p._version for p in model.parameters()]
            opt.step()
            assert [p._version for p in model.parameters()] == versions   # (torch's way)
            with torch.no_grad():
                model.train()
                want, _ = model(x[:, 1:], state)
                model.eval()
                for t in range(2):
                    logits, state = model.step(x[:, 1 + t], state)
                    assert_same(logits, want[:, t], torch.float32)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("change", ["hook", "prune", "weight_norm"])
def test_lm_step_runs_what_wraps_the_embedding_and_the_head(change):
    """A forward hook on the head, pruning of the embedding or a weight_norm of the head: the
    compiled step read the bare weights it had cached (0.5 off with the hook)."""
    from torch.nn.utils import parametrizations, prune
    model = lm("gru")
    x = torch.randint(0, 13, (2, 4))
    with torch.no_grad():
        model.step(x[:, 0], None)                                   # a plan made before
    if change == "hook":
        model.head.register_forward_hook(lambda m, args, out: out * 2 + 1)
    elif change == "prune":
        prune.l1_unstructured(model.embed, "weight", amount=0.5)
    else:
        parametrizations.weight_norm(model.head)
    with torch.no_grad():
        model.step(x[:, 0], None)                                   # and one made after
        if change == "weight_norm":
            model.head.parametrizations.weight.original0.mul_(3)
        assert_steps_match_forward(model, x)


def test_lm_step_runs_global_forward_hooks():
    """A hook registered for every module (register_module_forward_hook) was run by forward
    and skipped by the compiled step (0.1-0.2 off)."""
    from torch.nn.modules.module import register_module_forward_hook
    model = lm("gru")
    x = torch.randint(0, 13, (2, 4))
    with torch.no_grad():
        model.step(x[:, 0], None)

    def halve(module, args, out):   # the recurrent layer's output (a dropout's in eval: as is)
        return (out[0] * 0.5, *out[1:]) if module is model.rnn else out
    handle = register_module_forward_hook(halve)
    try:
        with torch.no_grad():
            assert_steps_match_forward(model, x)
    finally:
        handle.remove()
