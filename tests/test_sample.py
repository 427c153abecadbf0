"""Sampling works on any init_state/step model: greedy, temperature, top-k, top-p, seeds."""
import pytest
import torch

from rnnkit.decode import filter_logits, pick, sample


class Counter:
    """A toy model outside rnnkit's models: always predicts (previous token + 1) mod V."""

    def __init__(self, V=5):
        self.V = V
        self.training = False

    def parameters(self):
        return iter(())

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def init_state(self, batch):
        return torch.zeros(batch)

    def step(self, x_t, state):
        logits = torch.full((x_t.shape[0], self.V), -5.0)
        logits[torch.arange(x_t.shape[0]), (x_t + 1) % self.V] = 5.0
        return logits, state + 1


def test_greedy_on_any_step_model():
    out = [int(x) for x in sample(Counter(), [0, 1], 6, temperature=0)]
    assert out == [2, 3, 4, 0, 1, 2]


def test_stop_id_ends_generation():
    out = [int(x) for x in sample(Counter(), [0], 10, temperature=0, stop_id=3)]
    assert out == [1, 2, 3]


def test_same_seed_same_sample():
    logits_model = Counter(V=50)
    a = [int(x) for x in sample(logits_model, [0], 20, temperature=5.0, seed=3)]
    b = [int(x) for x in sample(logits_model, [0], 20, temperature=5.0, seed=3)]
    assert a == b


def test_each_row_of_a_batch_draws_from_its_own_seed():
    """Row b of a batch sampled with seed s is the text of that prime alone with seed s + b,
    as `rnnkit sample -n N --seed s` gives; the conditional generator's first name changed
    with -n (one stream for the whole batch). A batch of one is unchanged."""
    from rnnkit.models import LanguageModel, LMConfig
    torch.manual_seed(0)
    m = LanguageModel(LMConfig(vocab_size=30, cell="gru", layers=1, hidden=16, embed=8)).eval()
    alone = [torch.cat(list(sample(m, torch.tensor([3, 4]), 30, 1.0, seed=s))).tolist()
             for s in (7, 8, 9)]
    rows = torch.stack(list(sample(m, torch.tensor([[3, 4]] * 3), 30, 1.0, seed=7)), 1)
    assert rows.tolist() == alone and alone[0] != alone[1]
    empty = list(sample(m, torch.zeros(0, 2, dtype=torch.long), 3, 1.0, seed=7))   # no rows
    assert [x.shape for x in empty] == [(0,)] * 3


def test_top_k_and_top_p_filters():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.7)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.5)).tolist() == [[False, True, True, True]]
    for _ in range(20):
        assert int(pick(logits, 1.0, top_k=1)) == 0


def test_pick_draws_from_the_distribution():
    """The inverse-CDF draw: u just below a token's cumulative probability picks it, just
    above picks the next; 20,000 draws match the probabilities (4 standard errors)."""
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.15, 0.05]])
    logits = torch.log(probs)
    cdf = logits.softmax(-1).double().cumsum(-1)[0]
    edges = cdf / cdf[-1]                                   # where u crosses into the next token
    for j, want in [(0, 0), (2, 2), (3, 3)]:
        below = torch.tensor([edges[j].item() - 1e-6], dtype=torch.float64)
        above = torch.tensor([edges[j].item() + 1e-6], dtype=torch.float64)
        assert int(pick(logits, 1.0, u=below)) == want
        assert int(pick(logits, 1.0, u=above)) == {0: 2, 2: 3, 3: 4}[j]  # token 1 has p = 0
    g = torch.Generator().manual_seed(0)
    n = 20_000
    draws = torch.stack([pick(logits.expand(100, -1), 1.0, generator=g) for _ in range(n // 100)])
    freq = torch.bincount(draws.flatten(), minlength=5).double() / n
    se = (probs[0].double() * (1 - probs[0].double()) / n).sqrt()
    assert ((freq - probs[0]).abs() <= 4 * se + 1e-12).all(), freq


def test_top_k_1_is_the_most_likely_token_at_a_temperature_past_float32():
    """logits / 3.5e38 are all 0 in float32: top-k 1 kept every tied token and drew among them;
    the rank of the logits does not depend on the temperature."""
    from rnnkit.models import LanguageModel, LMConfig
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.5]])
    assert {int(pick(logits, temperature=t, top_k=1)) for t in (1e38, 3.5e38, 1e300)} == {1}
    torch.manual_seed(0)
    lm = LanguageModel(LMConfig(vocab_size=12, hidden=16, layers=1))   # its compiled loop too
    greedy = [int(x) for x in sample(lm, [1, 2], 40, temperature=0)]
    assert [int(x) for x in sample(lm, [1, 2], 40, temperature=1e300, top_k=1, seed=1)] == greedy


def test_a_temperature_too_small_for_float32_is_greedy():
    """logits / 1e-39 overflowed float32: the softmax was NaN and the draw the last token."""
    from rnnkit.models import LanguageModel, LMConfig
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.5]])
    assert [int(pick(logits, temperature=t)) for t in (1e-20, 1e-39, 1e-300)] == [1, 1, 1]
    torch.manual_seed(0)
    lm = LanguageModel(LMConfig(vocab_size=12, hidden=16, layers=1))   # its compiled loop too
    greedy = [int(x) for x in sample(lm, [1, 2], 70, temperature=0)]
    for t in (1e-39, 1e-300):
        assert [int(x) for x in sample(lm, [1, 2], 70, temperature=t, seed=1)] == greedy
    assert [int(x) for x in sample(Counter(), [0, 1], 6, temperature=1e-300)] == [2, 3, 4, 0, 1, 2]


def test_scores_that_overflow_are_refused_not_drawn_from():
    """NaN scores made every draw the last token, and beam search a run of one token, exit 0."""
    from rnnkit.decode.beam import beam_search
    from rnnkit.models import LanguageModel, LMConfig
    from rnnkit.train import CheckpointError
    torch.manual_seed(0)
    lm = LanguageModel(LMConfig(vocab_size=12, hidden=16, layers=1))
    with torch.no_grad():
        lm.head.bias[3] = float("nan")
    for run in (lambda: list(sample(lm, [1, 2], 20, temperature=1.0, seed=1)),
                lambda: list(sample(Counter(), [0, 1], 4)) and list(sample(lm, [1], 5)),
                lambda: beam_search(lm, [1, 2], 3, 10)):
        with pytest.raises(CheckpointError, match="next-token scores are not finite"):
            run()
