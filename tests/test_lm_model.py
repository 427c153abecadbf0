"""The language model: shapes, the step interface matching the full forward, state carry-over."""
import pytest
import torch

from rnnkit.models import LanguageModel, LMConfig
from rnnkit.train.lm import LMTask
from rnnkit.data import Vocab

from lm_fixtures import ENGLISH


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_step_matches_forward(cell):
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(vocab_size=11, cell=cell, layers=2, hidden=8, embed=4)).eval()
    x = torch.randint(0, 11, (3, 5))                                  # (B, T)
    logits, _ = model(x)                                              # (B, T, V)
    assert logits.shape == (3, 5, 11)
    state = model.init_state(3)
    for t in range(5):
        step_logits, state = model.step(x[:, t], state)               # (B, V)
        torch.testing.assert_close(step_logits, logits[:, t])


def test_state_carry_equals_one_long_sequence():
    """Two consecutive halves with the state carried give the same loss as the whole."""
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(vocab_size=7, hidden=8, embed=4)).eval()
    x = torch.randint(0, 7, (2, 10))
    y = torch.randint(0, 7, (2, 10))
    whole, _ = model.loss(x, y)
    a, state = model.loss(x[:, :5], y[:, :5])
    b, _ = model.loss(x[:, 5:], y[:, 5:], state)
    torch.testing.assert_close((a + b) / 2, whole)


def test_task_carries_detached_state_and_resets_each_pass():
    torch.manual_seed(0)
    vocab = Vocab.build(ENGLISH)
    ids = torch.tensor(vocab.encode(ENGLISH))
    from rnnkit.train.lm import LMData
    model = LanguageModel(LMConfig(vocab_size=len(vocab), layers=1, hidden=8, embed=4))
    task = LMTask(model, vocab, ids[:-100], ids[-100:], LMData(seq_len=8, batch=2))
    task.loss(task.train_batch(0))
    h, c = task.state
    assert not h.requires_grad and h.shape == (1, 2, 8)
    task.loss(task.train_batch(1))
    assert not torch.equal(task.state[0], h)
    task.state = (torch.full_like(h, 7.0), c)
    task.loss(task.train_batch(len(task.train)))                      # a new pass: state reset
    assert task.state[0].abs().max() < 1


def test_bad_config_rejected():
    with pytest.raises(ValueError, match="cell must be one of"):
        LMConfig(vocab_size=3, cell="transformer")
    with pytest.raises(ValueError, match="vocab_size"):
        LanguageModel(LMConfig())


@pytest.mark.parametrize("n, streams, seq_len", [(300, 64, 2), (257, 64, 2), (100, 7, 5),
                                                 (64, 8, 3)])
def test_evaluation_scores_every_token_once(n, streams, seq_len):
    """The streams cut the sequence into equal rows and left up to streams - 1 predictions at
    its end unscored, while the count said all of them; the tail now continues the last row."""
    from rnnkit.tasks.lm import eval_streams, stream_sums
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(vocab_size=7, cell="lstm", hidden=8, embed=4)).double().eval()
    ids = torch.randint(0, 7, (n,))
    batches = eval_streams(ids, streams, seq_len)
    total, count = stream_sums(model, batches)
    assert count == n - 1 == batches.tokens
    B, per_row = batches.x.shape
    rows = [(ids[b * per_row:(b + 1) * per_row], ids[b * per_row + 1:(b + 1) * per_row + 1])
            for b in range(B - 1)] + [(ids[(B - 1) * per_row:-1], ids[(B - 1) * per_row + 1:])]
    want = sum(float(model.loss(x[None], y[None])[0]) * len(y) for x, y in rows)
    assert total == pytest.approx(want, rel=1e-12)
