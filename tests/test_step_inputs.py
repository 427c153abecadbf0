"""A generative model's step(ids, state) with ids or a state that do not fit: one line naming
them as given, where the embedding, the stack or torch.cat named their own inner tensors."""
import pytest
import torch

from rnnkit.layers import fast_step
from rnnkit.layers.errors import InputError
from rnnkit.models.conditional import CondConfig, ConditionalGenerator
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig


def test_a_language_models_ids_are_named_as_given():
    """(B, 1) ids named the embedding's output (3, 1, 8); float ids gave torch's embedding
    error."""
    torch.manual_seed(0)
    m = LanguageModel(LMConfig(vocab_size=11, layers=2, hidden=16, embed=8)).eval()
    with torch.no_grad():
        state = m.step(torch.tensor([1, 2, 3]), None)[1]
        for ids in (torch.tensor([[1], [2], [3]]), torch.tensor([1., 2, 3])):
            with pytest.raises(InputError, match=r"LanguageModel.step: ids must be token ids of "
                                                 r"shape \(batch,\) \(int64 or int32\)"):
                m.step(ids, state)
        with fast_step.disabled(), pytest.raises(IndexError, match=r"token id 11 at batch row 1 "
                                                                   r"is outside the vocabulary"):
            m.step(torch.tensor([1, 11, 2]), state)
        with pytest.raises(InputError, match=r"\(int64 or int32\), got a torch.uint8 tensor"):
            m.step(torch.tensor([1, 2, 3], dtype=torch.uint8), state)
        logits = m.step(torch.tensor(3), None)[0]   # one unbatched id, as forward takes it
        assert logits.shape == (11,)


def test_a_decoders_ids_and_state_are_named():
    """A batch that does not fit the state: "Sizes of tensors must match ... tensor number 1";
    an id past the vocabulary: "index out of range in self"; a state without its decoder
    part: KeyError: 'feed'."""
    torch.manual_seed(0)
    s2s = Seq2Seq(Seq2SeqConfig(src_vocab=11, tgt_vocab=10, embed=6, enc_hidden=8,
                                hidden=12)).eval()
    cond = ConditionalGenerator(CondConfig(vocab_size=10, n_classes=3, hidden=12, embed=6,
                                           cond_size=4)).eval()
    with torch.no_grad():
        states = {s2s: s2s.encode(torch.randint(1, 11, (3, 5)), torch.tensor([5, 4, 2])),
                  cond: cond.condition(torch.tensor([0, 1, 2]))}
        for model, state in states.items():
            name = type(model).__name__
            model.step(torch.tensor([1, 2, 3]), state)
            with pytest.raises(InputError, match=fr"{name}.step: the state holds 3 row\(s\), "
                                                 fr"got 2 ids"):
                model.step(torch.tensor([1, 2]), state)
            with pytest.raises(IndexError, match=fr"{name}: token id 10 at batch row 2 is "
                                                 fr"outside the vocabulary \[0, 10\)"):
                model.step(torch.tensor([1, 2, 10]), state)
        with pytest.raises(InputError, match="holding 'feed'; got keys \\['rnn'\\]"):
            s2s.step(torch.tensor([1, 2, 3]), {"rnn": states[s2s]["rnn"]})


def test_a_step_of_what_is_not_a_recurrent_layer_is_named():
    with pytest.raises(InputError, match="runs a recurrent layer .* got a Linear"):
        fast_step.step(torch.nn.Linear(3, 4), torch.randn(2, 3))
