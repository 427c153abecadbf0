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
    p = scores.softmax(0)                                  # each path's probability
    brute = torch.stack([sum(p[i] * torch.nn.functional.one_hot(q[0], K) for i, q in
                             enumerate(paths))])            # (1, T, K) tag marginals
    two = torch.cat([em, torch.randn(1, T, K)])            # a longer row beside: any order
    marginals = crf.marginals(two.flip(0), torch.stack([mask[0], short[0]]).flip(0)).flip(0)
    torch.testing.assert_close(marginals[:1], brute)
    assert marginals[1, 2:].abs().max() == 0 and torch.allclose(marginals[1, :2].sum(1), torch.ones(2))


def test_crf_nll_of_a_sure_path_is_never_negative():
    """float32 rounding of the forward algorithm gave a near-certain path a negative NLL (-7e-4
    here; a tagger's test_loss of -3e-7), where no gradient is taken (evaluation)."""
    torch.manual_seed(0)
    worst = 0.0
    for _ in range(400):
        crf = CRF(4)
        with torch.no_grad():
            for p in crf.parameters():
                p.normal_(0, 5)
        em, mask = torch.randn(1, 12, 4) * 200, torch.ones(1, 12, dtype=torch.bool)
        tags = torch.tensor([crf.viterbi(em, mask)[0]])
        with torch.no_grad():
            worst = min(worst, float(crf.nll(em, tags, mask)))
    assert worst == 0.0   # (with autograd the loss is summed in float64: chain_nll)


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


def test_models_from_python_say_what_they_take():
    """Inputs a researcher gets wrong from Python: each a one-line error (they were torch's shape
    errors, a silently wrong shape, or features read from extra columns)."""
    torch.manual_seed(0)
    m = SequenceClassifier(ClassifierConfig(vocab_size=10, num_classes=3, hidden=4, embed=5,
                                            ngrams=3, char_grams=0, bag="on", buckets=50,
                                            bag_buckets=60, dropout=0.0)).eval()
    x = torch.tensor([[1, 2, 3]])
    g = torch.randint(1, 61, (1, 3, 2))
    with pytest.raises(ValueError, match=r"reads 2 n-gram buckets a token \(B, T, 2\), got "
                                         r"grams of shape \(1, 3, 6\)"):
        m(x, torch.tensor([3]), torch.cat([g, g, g], -1))
    assert torch.equal(m(x, [3], g), m(x, torch.tensor([3]), g))      # lengths as a list
    avg = SequenceClassifier(ClassifierConfig(vocab_size=10, num_classes=3, hidden=4, embed=5,
                                              bag="off", ngrams=1, char_grams=0,
                                              average=0.9)).double()
    assert next(avg.averaged().parameters()).dtype == torch.float64
    with pytest.raises(ValueError, match="base 'ets' per column needs history=True"):
        ForecasterConfig(features=2, horizon=3, base="ets", history=False, per_column=True)
    f = Forecaster(ForecasterConfig(features=2, horizon=3, history=False, window=10))
    with pytest.raises(ValueError, match=r"reads windows of 10 steps \(B, 10, F\), got 8"):
        f(torch.randn(4, 8, 2))
    with pytest.raises(ValueError, match="steps must be at least 1, got 0"):
        f.forecast(torch.randn(4, 10, 2), 0)
    e = Forecaster(ForecasterConfig(features=2, horizon=3, base="ets", history=False,
                                    period=12, window=8))
    with pytest.raises(ValueError, match="a season of 12 needs a window of at least 12, got 8"):
        e(torch.randn(4, 8, 2))
    with pytest.raises(ValueError, match="non-empty prefix of each row"):
        CRF(3).viterbi(torch.randn(2, 3, 3), torch.tensor([[True, True, False], [False] * 3]))


def test_beam_search_scores_a_float64_model_in_float64():
    from rnnkit.decode import beam_search
    from rnnkit.models import LanguageModel, LMConfig
    torch.manual_seed(0)
    m = LanguageModel(LMConfig(vocab_size=50, hidden=16, layers=1)).double().eval()
    ids, score = beam_search(m, [1], beam_size=3, max_len=20, length_penalty=0.0)[0]
    state, total = m.init_state(1), 0.0
    with torch.no_grad():
        logits, state = m.step(torch.tensor([1]), state)
        for t in ids:
            total += torch.log_softmax(logits, -1)[0, t].item()
            logits, state = m.step(torch.tensor([t]), state)
    assert abs(score - total) < 1e-10


def test_a_classifier_of_character_grams_alone_takes_its_encoders_grams():
    """ngrams 0 (the config's default) with character grams: the width check counted -1 token
    n-gram columns and refused the encoder's own batches."""
    from rnnkit.data import Vocab
    from rnnkit.models.classifier import gram_space
    from rnnkit.tasks.classify_text import TextEncoder, batch
    cfg = ClassifierConfig(vocab_size=10, num_classes=2, hidden=4, embed=5, ngrams=0,
                           char_grams=3, bag="on", buckets=50, bag_buckets=60, dropout=0.0)
    m = SequenceClassifier(cfg).eval()
    enc = TextEncoder(Vocab(["<pad>", "<unk>", "good", "bad", "movie"], "word"), "word", 0,
                      cfg.ngrams, gram_space(cfg), cfg.char_grams)
    assert m(*batch([enc("good movie"), enc("bad")])).shape == (2, 2)


def test_a_forecaster_that_needs_the_history_says_so_when_compiled_too():
    f = Forecaster(ForecasterConfig(features=1, horizon=3, window=10, hidden=4, layers=1)).eval()
    with torch.no_grad():
        f.share.fill_(0.5)
    with pytest.raises(Exception, match="needs the history smoothing's forecast"):
        torch.compile(f, backend="eager")(torch.randn(2, 10, 1))
