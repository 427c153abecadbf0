"""Beam search against brute-force enumeration, on a language model (tensor state) and on a
seq2seq decoder (dict state with attention memory, reordered by the model's hook)."""
import itertools

import pytest
import torch

from rnnkit.data.pairs import BOS_ID
from rnnkit.decode import beam_search, sample
from rnnkit.models import LanguageModel, LMConfig
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig


def sequence_logp(model, prime_ids, seq, state=None):
    """log p(seq | prime) by feeding the model one token at a time."""
    with torch.no_grad():
        state = model.init_state(1) if state is None else state
        for x in prime_ids:
            logits, state = model.step(torch.tensor([x]), state)
        total = 0.0
        for x in seq:
            total += float(torch.log_softmax(logits[0], -1)[x])
            logits, state = model.step(torch.tensor([x]), state)
    return total


def brute_force(model, prime_ids, V, max_len, eos, alpha, state_fn=lambda: None):
    """Every hypothesis beam search may return: ended by eos (eos counted in the length, not
    returned), or max_len tokens long; scored log p / n^alpha. Sorted best first."""
    scored = []
    for n in range(1, max_len + 1):
        for seq in itertools.product(range(V), repeat=n):
            if eos in seq[:-1] or (n < max_len and seq[-1] != eos):
                continue
            lp = sequence_logp(model, prime_ids, seq, state_fn())
            ids = list(seq[:-1]) if seq[-1] == eos else list(seq)
            scored.append((lp / n ** alpha, ids))
    return sorted(scored, key=lambda s: -s[0])


def tiny_lm(V=3):
    torch.manual_seed(3)
    model = LanguageModel(LMConfig(vocab_size=V, cell="gru", layers=1, hidden=8, embed=4)).eval()
    with torch.no_grad():
        model.head.weight.mul_(6)   # peaky enough that greedy and beam disagree
    return model


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_matches_brute_force_on_a_language_model(alpha):
    model, V, L, eos = tiny_lm(), 3, 4, 2
    expected = brute_force(model, [0], V, L, eos, alpha)
    got = beam_search(model, [0], beam_size=V ** L, max_len=L, eos_id=eos, length_penalty=alpha,
                      n_best=3)
    assert [ids for ids, _ in got] == [ids for _, ids in expected[:3]]
    for (_, s), (e, _) in zip(got, expected):
        assert s == pytest.approx(e, abs=1e-5)


def test_beam_matches_brute_force_on_seq2seq_with_attention():
    torch.manual_seed(5)
    cfg = Seq2SeqConfig(src_vocab=7, tgt_vocab=4, embed=4, enc_hidden=4, hidden=8,
                        attention="additive", input_feed=True, max_len=3)
    model = Seq2Seq(cfg).eval()
    with torch.no_grad():
        model.head.weight.mul_(5)
    src, lengths = torch.tensor([[4, 5, 6, 0]]), torch.tensor([3])
    state = lambda: model.encode(src, lengths)
    expected = brute_force(model, [BOS_ID], 4, 3, 2, 1.0, state)
    got = beam_search(model, [BOS_ID], beam_size=64, max_len=3, eos_id=2, state=state(), n_best=2)
    assert [ids for ids, _ in got] == [ids for _, ids in expected[:2]]


def test_beam_of_one_is_greedy_and_wider_beams_score_no_worse():
    model = tiny_lm(V=5)
    greedy = torch.cat(list(sample(model, [1], 8, temperature=0))).tolist()
    (ids, _), = beam_search(model, [1], beam_size=1, max_len=8, length_penalty=0.0)
    assert ids == greedy
    best = [beam_search(model, [1], k, 8, length_penalty=0.0)[0][1] for k in (1, 2, 4, 8)]
    assert all(b >= a - 1e-6 for a, b in zip(best, best[1:]))


def test_beam_rejects_bad_arguments():
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(tiny_lm(), [0], beam_size=0)
    with pytest.raises(ValueError, match="n_best must be >= 1, got 2, 100, 0"):   # it gave []
        beam_search(tiny_lm(), [0], beam_size=2, n_best=0)
    with pytest.raises(TypeError, match="prime_ids must be integer token ids, got torch.float"):
        beam_search(tiny_lm(), [1.5], beam_size=2)                # it searched from token 1
    with pytest.raises(ValueError, match="prime must hold at least one token"):
        beam_search(tiny_lm(), [], beam_size=2)


def test_batched_beam_search_checks_its_arguments_as_beam_search():
    from rnnkit.decode.beam import beam_search_batch
    from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
    s = Seq2Seq(Seq2SeqConfig(src_vocab=9, tgt_vocab=9, embed=8, enc_hidden=8, hidden=8)).eval()
    st = s.encode(torch.tensor([[3, 4, 5], [4, 5, 0]]), torch.tensor([3, 2]))
    with pytest.raises(ValueError, match="n_best must be >= 1"):
        beam_search_batch(s, [1, 1], st, beam_size=3, max_len=4, eos_id=2, n_best=0)
    with pytest.raises(TypeError, match="bos_ids must be integer token ids"):
        beam_search_batch(s, [1.7, 1.2], st, beam_size=3, max_len=4, eos_id=2)
    with pytest.raises(ValueError, match="beam_search searches one sequence, but the state "
                                         "holds 2 rows"):        # a torch error in cat
        beam_search(s, [1], state=st, beam_size=3, max_len=4, eos_id=2)
    one = s.encode(torch.tensor([[3, 4, 5]]), torch.tensor([3]))
    assert beam_search(s, [1], state=one, beam_size=3, max_len=4, eos_id=2)


class _OwnDecoder(torch.nn.Module):
    """A state of (memory (B, S, M), h (1, B, H)) with a reorder_state of its own."""

    def __init__(self, V=7, H=8):
        super().__init__()
        self.emb, self.cell = torch.nn.Embedding(V, H), torch.nn.GRUCell(H, H)
        self.out = torch.nn.Linear(2 * H, V)

    def reorder_state(self, st, i):
        return st[0].index_select(0, i), st[1].index_select(1, i)

    def step(self, x, st):
        mem, h = st
        h2 = self.cell(self.emb(x), h[0])
        ctx = (torch.softmax(mem @ h2[:, :, None], 1) * mem).sum(1)
        return self.out(torch.cat([h2, ctx], -1)), (mem, h2[None])


def test_a_state_of_a_layout_of_its_own_is_searched():   # its memory's 5 were taken as rows
    torch.manual_seed(0)
    state = (torch.randn(1, 5, 8), torch.zeros(1, 1, 8))
    assert beam_search(_OwnDecoder().eval(), [1], beam_size=3, max_len=5, eos_id=2, state=state)


def test_seq2seq_with_an_empty_target():
    s = Seq2Seq(Seq2SeqConfig(src_vocab=9, tgt_vocab=9, embed=8, enc_hidden=8, hidden=8))
    src, lengths = torch.tensor([[3, 4, 5], [4, 5, 0]]), torch.tensor([3, 2])
    for forcing in (1.0, 0.5):                                   # both were an IndexError
        assert s(src, lengths, torch.zeros(2, 0, dtype=torch.long), forcing).shape == (2, 0, 9)
    with pytest.raises(ValueError, match=r"expected tgt \(B, T\+1\): BOS, the target's ids and "
                                         r"EOS, at least 2 columns, got \(2, 1\)"):
        s.loss(src, lengths, torch.ones(2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected tgt_in \(B, T\) with B = 2 as in src"):
        s(src, lengths, torch.ones(3, 2, dtype=torch.long))


def test_sample_command_runs_beam_search_on_a_char_lm(tmp_path, capsys):
    from lm_fixtures import tiny_configs, write_corpus

    from rnnkit.cli.main import main
    from rnnkit.train import Checkpointer, Trainer
    from rnnkit.train.lm import build_lm_task
    data, model, train = tiny_configs(write_corpus(tmp_path), max_steps=4, eval_every=4)
    Trainer(build_lm_task(data, model, log=lambda *a: None), train,
            [Checkpointer(tmp_path / "run")]).fit()
    assert main(["sample", str(tmp_path / "run"), "--prime", "ROMEO", "--beam", "3",
                 "--length", "12"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ROMEO") and len(out.rstrip("\n")) == len("ROMEO") + 12


@pytest.mark.parametrize("attention", ["general", "additive", "none"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_batched_beam_search_is_each_sources_own_search(cell, attention):
    """beam_search_batch over sources of different lengths and output limits (so searches end at
    different steps and leave the batch) finds, for each, what beam_search finds alone."""
    from rnnkit.data.pairs import pad
    from rnnkit.decode import beam_search_batch
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(src_vocab=20, tgt_vocab=12, cell=cell, embed=8, enc_hidden=8,
                                  hidden=10, attention=attention)).double().eval()
    g = torch.Generator().manual_seed(1)
    srcs = [torch.randint(3, 20, (int(n),), generator=g).tolist()
            for n in torch.randint(2, 9, (7,), generator=g)]
    limits = [2 * len(s) + 3 for s in srcs]
    src, lengths = pad(srcs)
    got = beam_search_batch(model, torch.full((7,), BOS_ID), model.encode(src, lengths), 4,
                            limits, eos_id=2, n_best=3)
    assert len({len(ids) for hyps in got for ids, _ in hyps}) > 2     # searches of many lengths
    for s, limit, hyps in zip(srcs, limits, got):
        want = beam_search(model, [BOS_ID], 4, limit, eos_id=2, n_best=3,
                           state=model.encode(torch.tensor([s]), [len(s)]))
        assert [ids for ids, _ in hyps] == [ids for ids, _ in want]
        assert [sc for _, sc in hyps] == pytest.approx([sc for _, sc in want], abs=1e-9)


def test_batched_beam_search_rejects_what_it_cannot_search():
    from rnnkit.decode import beam_search_batch
    model = LanguageModel(LMConfig(vocab_size=5, hidden=4, embed=3, layers=1)).eval()
    with pytest.raises(TypeError, match="expand_beams"):
        beam_search_batch(model, torch.tensor([1]), None, 2, 5)
    s2s = Seq2Seq(Seq2SeqConfig(src_vocab=6, tgt_vocab=6, embed=4, enc_hidden=4, hidden=4))
    with pytest.raises(ValueError, match="one per sequence"):
        beam_search_batch(s2s, torch.tensor([1, 1]), None, 2, [5])


class RandomGRU(torch.nn.Module):
    """A language model of N(0, 1) weights: step(ids (B,), state (1, B, H)) -> logits (B, V)."""

    def __init__(self, V, seed, H=6, scale=2.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.nn.Parameter(torch.randn(V, H, generator=g))
        self.cell = torch.nn.GRUCell(H, H)
        with torch.no_grad():
            for p in self.cell.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.out = torch.nn.Parameter(torch.randn(V, H, generator=g) * scale)
        self.H = H

    def init_state(self, batch):
        return torch.zeros(1, batch, self.H)

    def step(self, ids, state):
        h = self.cell(self.emb[ids], state[0])
        return h @ self.out.T, h[None]


@pytest.mark.parametrize("alpha", [-1.0, -0.3, 0.5])
def test_stopping_early_never_changes_what_a_narrow_beam_returns(alpha, monkeypatch):
    """A search stops once no live prefix can beat its K-th finished one. With a negative length
    penalty (short hypotheses favoured) the bound was too low and the search stopped too soon,
    returning a hypothesis that the same beam, searched on, beat."""
    import rnnkit.decode.beam as beam
    stops = beam._done
    for seed in range(16):
        model = RandomGRU(4 + seed % 2, seed)
        for K in (1, 2, 3):
            args = dict(beam_size=K, max_len=5, eos_id=0, length_penalty=alpha, n_best=K)
            monkeypatch.setattr(beam, "_done", stops)
            early = beam_search(model, [1], **args)
            monkeypatch.setattr(beam, "_done", lambda *a: False)
            assert early == beam_search(model, [1], **args), (seed, K)


def test_a_search_refuses_more_hypotheses_than_its_beam_keeps():
    """n_best 5 with beam 2 returned three, unsaid."""
    with pytest.raises(ValueError, match="n_best must be at most beam_size .* got n_best 5 with "
                                         "beam_size 2"):
        beam_search(tiny_lm(), [0], beam_size=2, n_best=5)
