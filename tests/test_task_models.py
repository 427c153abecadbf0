"""Task models: padding never changes a prediction; CRF against brute force; forecaster shapes."""
import itertools

import pytest
import torch

from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.models.crf import CRF
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.tagger import SequenceTagger, TaggerConfig


@pytest.mark.parametrize("cell,pooling,bi", [("lstm", "last", True), ("gru", "mean", True),
                                             ("rnn", "max", False), ("lstm", "attention", True),
                                             ("gru", "last", False)])
def test_classifier_padding_never_changes_a_prediction(cell, pooling, bi):
    cfg = ClassifierConfig(vocab_size=20, num_classes=3, cell=cell, pooling=pooling, layers=2,
                           hidden=8, embed=6, bidirectional=bi, dropout=0.0)
    model = SequenceClassifier(cfg).eval()
    seqs = [[3, 4, 5], [7, 8, 9, 10, 11, 12], [2]]
    alone = torch.cat([model(torch.tensor([s]), torch.tensor([len(s)])) for s in seqs])  # (3, K)
    x = torch.randint(1, 20, (3, 9))          # padding positions hold junk, not zeros
    for i, s in enumerate(seqs):
        x[i, :len(s)] = torch.tensor(s)
    batched = model(x, torch.tensor([len(s) for s in seqs]))                              # (3, K)
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("crf", [False, True])
def test_tagger_padding_never_changes_tags(crf):
    cfg = TaggerConfig(vocab_size=15, num_tags=4, char_vocab_size=10, hidden=8, embed=6,
                       char_embed=4, char_hidden=4, dropout=0.0, crf=crf)
    model = SequenceTagger(cfg).eval()
    x = torch.randint(1, 15, (2, 7))
    chars = torch.randint(1, 10, (2, 7, 3))
    clen = torch.randint(1, 4, (2, 7))
    lengths = torch.tensor([4, 7])
    grams = torch.randint(1, cfg.window_buckets + 1, (2, 7, cfg.input_grams))   # the window term
    with torch.no_grad():
        model.window.weight.normal_()
    both = model.decode(x, lengths, chars, clen, grams)
    first = model.decode(x[:1, :4], lengths[:1], chars[:1, :4], clen[:1, :4], grams[:1, :4])
    assert both[0] == first[0] and [len(t) for t in both] == [4, 7]
    s_both = model(x, lengths, chars, clen, grams)[0, :4]
    torch.testing.assert_close(s_both, model(x[:1, :4], lengths[:1], chars[:1, :4], clen[:1, :4],
                                             grams[:1, :4])[0])


def test_crf_partition_and_viterbi_match_brute_force():
    torch.manual_seed(1)
    K, T = 3, 4
    crf = CRF(K)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    em = torch.randn(1, T, K)
    mask = torch.ones(1, T, dtype=torch.bool)
    paths = [torch.tensor([p]) for p in itertools.product(range(K), repeat=T)]
    scores = torch.stack([crf.score(em, p, mask)[0] for p in paths])
    torch.testing.assert_close(crf.log_partition(em, mask)[0], torch.logsumexp(scores, 0))
    assert crf.viterbi(em, mask)[0] == paths[int(scores.argmax())][0].tolist()
    short = torch.tensor([[True, True, False, False]])   # masked steps are ignored
    torch.testing.assert_close(crf.log_partition(em, short), crf.log_partition(em[:, :2], mask[:, :2]))


@pytest.mark.parametrize("mode", ["direct", "autoregressive"])
def test_forecaster_shapes_and_naive_start(mode):
    cfg = ForecasterConfig(features=2, horizon=3, mode=mode, layers=1, hidden=8)
    model = Forecaster(cfg)
    z = torch.randn(4, 10, 2)
    assert model.forecast(z, 7).shape == (4, 7, 2)
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)   # zero change: the naive forecast, last value repeated
    torch.testing.assert_close(model.forecast(z, 5), z[:, -1:].expand(4, 5, 2))
    assert model.loss(z, torch.randn(4, 3, 2)).dim() == 0


def test_configs_reject_bad_values():
    with pytest.raises(ValueError, match="pooling must be one of"):
        ClassifierConfig(pooling="sum")
    with pytest.raises(ValueError, match="mode must be one of"):
        ForecasterConfig(mode="recursive")
    with pytest.raises(ValueError, match="cell must be one of"):
        TaggerConfig(cell="tcn")
