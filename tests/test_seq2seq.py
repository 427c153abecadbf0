"""Seq2Seq pieces: attention variants, the parallel and step-by-step decoders agree, padding does
not leak, bad input gets a clear message, the data readers, and the command line end to end."""
import json

import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.data import DataError
from rnnkit.data.names import parse_line
from rnnkit.data.pair_sets import ding_pairs
from rnnkit.data.pairs import BOS_ID, EOS_ID, build_vocab, read_pairs, split_of
from rnnkit.models.conditional import CondConfig, ConditionalGenerator
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.tasks.translation import Translator, char_error_rate, corpus_bleu

from seq2seq_fixtures import write_names, write_pairs


def tiny(attention="general", **kw):
    kw = {"embed": 6, "enc_hidden": 5, "hidden": 10, "max_len": 8, **kw}
    cfg = Seq2SeqConfig(src_vocab=12, tgt_vocab=9, attention=attention, **kw)
    return Seq2Seq(cfg).double()


@pytest.mark.parametrize("attention", ["none", "additive", "dot", "general"])
def test_parallel_decoder_equals_step_by_step(attention):
    model = tiny(attention, input_feed=False, dec_layers=2, enc_layers=2)
    src, lengths = torch.randint(4, 12, (3, 6)), torch.tensor([6, 2, 4])
    tgt = torch.randint(3, 9, (3, 5))
    tgt[:, 0] = BOS_ID
    parallel = model(src, lengths, tgt)                                      # (B, T, V)
    state, steps = model.encode(src, lengths), []
    for t in range(tgt.shape[1]):
        logits, state = model.step(tgt[:, t], state)
        steps.append(logits)
    torch.testing.assert_close(parallel, torch.stack(steps, 1))


@pytest.mark.parametrize("feed", [True, False])
def test_padding_does_not_change_a_sentence(feed):
    model = tiny("additive", input_feed=feed, cell="gru").eval()
    src = torch.tensor([[4, 5, 6, 0, 0], [7, 8, 9, 10, 11]])
    tgt = torch.tensor([[BOS_ID, 3, 4], [BOS_ID, 5, 6]])
    both = model(src, torch.tensor([3, 5]), tgt)
    alone = model(src[:1, :3], torch.tensor([3]), tgt[:1])
    torch.testing.assert_close(both[:1], alone)
    weights = model.attention_map(src[:1], torch.tensor([3]), tgt[:1])      # (T, S)
    assert torch.all(weights[:, 3:] == 0) and torch.allclose(weights.sum(1), torch.ones(3).double())


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="attention dot .* hidden must equal enc_hidden"):
        Seq2Seq(Seq2SeqConfig(src_vocab=5, tgt_vocab=5, enc_hidden=8, hidden=10, attention="dot"))
    with pytest.raises(ValueError, match="attention must be one of {none, additive"):
        Seq2SeqConfig(attention="luong")
    with pytest.raises(ValueError, match="exactly one of n_classes, features"):
        ConditionalGenerator(CondConfig(vocab_size=5, n_classes=3, features=2))


def test_bad_input_gets_a_clear_message():
    src_vocab = build_vocab(["abc abc"], "char")
    tgt_vocab = build_vocab(["xyz"], "char")
    warnings = []
    t = Translator(tiny(), src_vocab, tgt_vocab, warn=warnings.append)
    with pytest.raises(DataError, match="empty source"):
        t.translate("   ")
    with pytest.raises(DataError, match="accepts at most max_len=8"):
        t.translate("abcabcabc")
    out = t.translate("abQ", beam_size=2)
    assert isinstance(out, str) and "['Q']" in warnings[0] and "<unk>" in warnings[0]


def test_feature_vector_condition():
    model = ConditionalGenerator(CondConfig(vocab_size=6, features=3, conditioning="input"))
    seq = torch.tensor([[BOS_ID, 4, 5, 2], [BOS_ID, 5, 2, 0]])
    loss, count = model.loss(torch.randn(2, 3), seq)
    assert count == 5 and loss.requires_grad
    with pytest.raises(ValueError, match=r"expected features \(B, 3\)"):
        model.condition(torch.randn(2, 4))


def test_readers(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nno tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv:2: expected 'source<TAB>target'"):
        read_pairs(bad)
    ding = tmp_path / "de-en"
    ding.write_text("# comment\nHund {m} | Der Hund bellt laut. :: dog | The dog barks loudly.\n"
                    "Ja; Jawohl :: Yes, I do agree.\n", encoding="utf-8")
    assert ding_pairs([ding]) == "Der Hund bellt laut.\tThe dog barks loudly.\n".encode()
    line = "M  Marco" + " " * 21 + " " * 4 + "B" + " " * 51 + "$"
    name, freqs = parse_line(line)
    assert name == "Marco" and freqs == {"Italy": 11}
    assert split_of("Der Hund bellt.") == split_of("Der Hund bellt.")


def test_metrics_come_from_sacrebleu_and_cer_counts_edits():
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100)
    assert char_error_rate(["kitten"], ["sitting"]) == pytest.approx(3 / 7)


def test_cli_train_translate_plot_and_sample(tmp_path, capsys, monkeypatch):
    pairs, names = write_pairs(tmp_path, 120), write_names(tmp_path, 4)
    run = tmp_path / "s2s"
    common = ["--max-steps", "6", "--eval-every", "3", "--warmup-steps", "0", "--quiet"]
    assert main(["train", "seq2seq", "--data", str(pairs), "--out", str(run), "--batch", "8",
                 "--embed", "8", "--enc-hidden", "8", "--hidden", "16", "--test-pairs", "4",
                 "--beam-size", "2", *common]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"bleu_greedy", "bleu_beam", "cer_greedy", "cer_beam", "best_val_loss"} <= set(metrics)
    capsys.readouterr()
    assert main(["translate", str(run), "ich sehe den hund", "--plot", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").stat().st_size > 0
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("du sehe\nein haus\n\n"))
    assert main(["translate", str(run), "--beam-size", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[-1] == ""       # the plot's line, then a line for each line
    assert main(["translate", str(run), "  "]) == 2
    assert "empty source" in capsys.readouterr().err
    cond = tmp_path / "names"
    assert main(["train", "cond", "--data", str(names), "--out", str(cond), "--hidden", "16",
                 *common]) == 0
    assert {"test_loss", "test_loss_wrong_cond", "cond_gain_nats"} <= set(
        json.loads((cond / "metrics.json").read_text()))
    capsys.readouterr()
    assert main(["sample", str(cond), "--cond", "Italy", "-n", "4", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert main(["sample", str(cond), "--cond", "Japan", "-n", "3", "--beam", "5"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["sample", str(cond), "--cond", "Atlantis"]) == 2
    assert "unknown condition 'Atlantis'" in capsys.readouterr().err


def test_loss_masks_padding_and_takes_smoothing_and_teacher_forcing_ratio():
    model = tiny("general")
    src, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
    tgt = torch.tensor([[BOS_ID, 3, 4, 2], [BOS_ID, 5, 2, 0]])
    plain, count = model.loss(src, lengths, tgt)
    assert count == 5                                    # the padded position is not counted
    longer = torch.cat([tgt, torch.zeros(2, 3, dtype=torch.long)], 1)   # more padding
    torch.testing.assert_close(model.loss(src, lengths, longer)[0], plain)
    smooth, _ = model.loss(src, lengths, tgt, label_smoothing=0.2)
    assert not torch.isclose(smooth, plain)
    torch.manual_seed(0)
    own, _ = model.loss(src, lengths, tgt, teacher_forcing=0.0)   # always feeds its own argmax
    assert torch.isfinite(own) and not torch.isclose(own, plain)


def test_greedy_output_does_not_depend_on_the_other_sentences_of_its_batch():
    """Greedy decoding cut a whole batch at one limit (from its longest source), so an output
    that never reached </s> ran longer beside a long sentence, and eval (64 a batch) scored
    other outputs than translate (16 a batch) printed. Each is cut at its own limit now."""
    torch.manual_seed(0)
    model = tiny(max_len=40).float()
    with torch.no_grad():
        model.head.bias[EOS_ID] = -1e4          # an output that never ends: cut at the limit
    src_vocab = build_vocab(["abc abc"], "char")
    tgt_vocab = build_vocab(["xyz"], "char")
    t = Translator(model, src_vocab, tgt_vocab)
    short, long = "ab", "abc abc abc abc"
    alone = t.greedy([short])[0]
    assert len(alone) == 2 * 2 + 10
    assert t.greedy([short, long])[0] == alone
    assert t.greedy([long, short, short])[1:] == [alone, alone]


def test_translate_names_the_line_too_long_before_any_output(tmp_path, capsys):
    """One line past the model's max_len stopped the file with no file or line named."""
    run = tmp_path / "run"
    assert main(["train", "seq2seq", "--data", str(write_pairs(tmp_path)), "--out", str(run),
                 "--max-steps", "2", "--hidden", "8", "--enc-hidden", "8", "--embed", "8",
                 "--max-len", "30"]) == 0
    capsys.readouterr()
    src = tmp_path / "in.txt"
    src.write_text("a b\n" + "a " * 40 + "\nb\n")
    assert main(["translate", str(run), "--file", str(src), "--beam-size", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"{src}:2: source has" in err and "max_len=30" in err


def test_a_validation_file_of_unknown_sources_is_warned_about(tmp_path, capsys):
    """Training validated on sources its vocabulary lacked (all <unk>) without a word, where
    eval warns; and the share counted the spaces between words as known tokens (33%, not 0%)."""
    data = write_pairs(tmp_path)
    val = tmp_path / "cyr.tsv"
    val.write_text("кот собака\tcat dog\n" * 6, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "seq2seq", "--data", str(data), "--val-data", str(val), "--out",
                 str(run), "--max-steps", "2", "--hidden", "8", "--enc-hidden", "8",
                 "--embed", "8"]) == 0
    err = capsys.readouterr().err
    assert f"{val}: the model's vocabulary holds" in err and "source tokens" in err
    assert main(["eval", str(run), str(val), "--beam-size", "1"]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "vocabulary holds" in line]
    assert len(said) == 1 and "holds 0% of the file's source tokens" in said[0]


def test_beam_search_of_width_one_over_many_sentences_runs():
    """train seq2seq --beam-size 1 ended in an internal error when it scored the test part: the
    state's beam count (1) was reordered as if it were rows."""
    torch.manual_seed(0)
    src_vocab = build_vocab(["abc abc"], "char")
    tgt_vocab = build_vocab(["xyz"], "char")
    t = Translator(tiny(max_len=20).float(), src_vocab, tgt_vocab)
    out = t.beams(["ab", "abc a", "c"], beam_size=1)
    assert len(out) == 3 and all(isinstance(o, str) for o in out)


def test_parts_left_empty_by_max_len_are_refused_and_max_len_is_the_output_s(tmp_path,
                                                                            capsys):
    """A validation part left empty by --max-len was a loss of 0.0 (best.pt frozen at the first
    check); a test part or eval file of only over-long sources an IndexError in sacrebleu; a
    target of exactly max_len tokens was dropped though the decoder may write it."""
    from rnnkit.tasks.seq2seq import Seq2SeqData, build_seq2seq_task
    pairs = tmp_path / "p.tsv"
    import random
    r = random.Random(0)
    words = sorted({"".join(r.choice("abcdefg") for _ in range(r.randint(1, 4)))
                    for _ in range(800)})
    pairs.write_text("".join(f"{w}\t{w[::-1].upper()}\n" for w in words))
    long = tmp_path / "long.tsv"
    long.write_text("abcdefgh\tHGFEDCBA\n")
    cfg = lambda: Seq2SeqConfig(embed=4, enc_hidden=4, hidden=8, max_len=4)   # noqa: E731
    for flag in ("val_data", "test_data"):
        with pytest.raises(DataError, match=rf"long.tsv \(--{flag[:-5]}-data\): every one "
                                            r"of its .* longer than max_len=4 tokens"):
            build_seq2seq_task(Seq2SeqData(data=str(pairs), **{flag: str(long)}), cfg(),
                               log=lambda *a: None)
    task = build_seq2seq_task(Seq2SeqData(data=str(pairs)), cfg(), log=lambda *a: None)
    assert max(len(t) for _, t in task.train.examples) == 4 + 2   # 4 letters: <s> DCBA </s>
    run = tmp_path / "run"
    assert main(["train", "seq2seq", "--data", str(pairs), "--out", str(run), "--max-len", "4",
                 "--embed", "4", "--enc-hidden", "4", "--hidden", "8", "--max-steps", "2",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), str(long)]) == 2
    assert "every source is longer than the model's max_len=4" in capsys.readouterr().err


def test_options_that_cannot_work_are_refused_before_the_work(tmp_path, capsys):
    """dot attention of unequal sizes was an internal error at the first step; translate
    --plot of a model without attention one after the translations were printed."""
    from rnnkit.config import ConfigError
    with pytest.raises(ConfigError, match="hidden must equal enc_hidden x 2 .* = 256, got hidden"):
        Seq2SeqConfig(attention="dot", hidden=128, enc_hidden=128)
    run = tmp_path / "run"
    assert main(["train", "seq2seq", "--data", str(write_pairs(tmp_path, 120)), "--out", str(run),
                 "--attention", "none", "--embed", "4", "--enc-hidden", "4", "--hidden", "8",
                 "--max-steps", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["translate", str(run), "ich sehe den hund", "--plot", str(tmp_path / "a.png")]) \
        == 2
    out = capsys.readouterr()
    assert out.out == "" and "--attention none and has none" in out.err


def test_the_python_api_checks_beam_width_and_length_penalty(tmp_path):
    """A NaN length penalty gave another translation; beam_size -7 decoded greedily; the
    attention map of an output with <unk> read it as three tokens."""
    from seq2seq_fixtures import seq2seq_task, translator
    t = translator(seq2seq_task(tmp_path))
    for kwargs, error in (({"beam_size": -7}, ValueError), ({"beam_size": 3,
                          "length_penalty": float("nan")}, ValueError)):
        with pytest.raises(error):
            t.translate("ich sehe den hund", **kwargs)
    src, tgt, weights = t.attention("ich sehe", "I <unk>")
    assert tgt[-2:] == ["<unk>", "</s>"] and weights.shape[0] == len(tgt)


def test_cond_beam_width_and_a_double_feature_model(tmp_path):
    from rnnkit.tasks.cond import most_likely
    from seq2seq_fixtures import cond_task
    task = cond_task(tmp_path)
    with pytest.raises(ValueError, match="the 5 most likely sequences need beam_size 5"):
        most_likely(task.model.eval(), task.vocab, task.conditions, "Italy", n=5, beam_size=2)
    m = ConditionalGenerator(CondConfig(vocab_size=10, features=3, hidden=8)).double()
    loss, _ = m.loss(torch.randn(1, 3, dtype=torch.float64), torch.tensor([[1, 4, 5, 2]]))
    assert loss.dtype == torch.float64              # float features met float64 weights


def test_the_test_scoring_names_its_pairs_and_how_to_score_fewer(tmp_path, monkeypatch):
    """Scoring 25,000 held-out pairs (greedy and beam 5) ran for minutes after one line that
    said neither how many nor how to score fewer."""
    from rnnkit.tasks.seq2seq import Seq2SeqData, build_seq2seq_task
    from seq2seq_fixtures import write_pairs
    lines = []
    data = str(write_pairs(tmp_path, n=2400))
    monkeypatch.setattr("rnnkit.tasks.translation.score_translations", lambda *a, **k: {})
    for given in (0, 3):
        task = build_seq2seq_task(Seq2SeqData(data=data, batch=8, test_pairs=given,
                                              beam_size=1), Seq2SeqConfig(
            embed=4, enc_hidden=4, hidden=4, max_len=40), log=lines.append)
        n = given or len(task.splits["test"])
        task.test_metrics()
        assert f"the {n} held-out test pairs (greedy and beam 1)" in lines[-1] and n < 2000
    task.splits["test"] = task.splits["test"][:1] * 2400
    task.data_config.test_pairs = 0
    task.test_metrics()
    assert "the 2,400 held-out test pairs (greedy and beam 1; --test-pairs N scores fewer)" \
        in lines[-1]


def test_the_plotted_attention_reads_the_tokens_decoding_made(tmp_path, capsys, monkeypatch):
    """translate --plot read the printed text encoded again: a word model's output at the
    length limit came back as fewer tokens, with a </s> row its model never read."""
    from rnnkit.cli import translate as translate_cli
    from rnnkit.tasks.seq2seq import load_seq2seq
    from seq2seq_fixtures import train_run
    run = train_run(tmp_path, "seq2seq", 1, "--src-tokens", "word", "--tgt-tokens", "word")
    translator = Translator(*load_seq2seq(run)[:3])
    plotted = []
    monkeypatch.setattr(translate_cli, "plot_attention", lambda *a: plotted.append(a[:2]))
    for beam in ("1", "3"):
        capsys.readouterr()
        assert main(["translate", str(run), "ich sehe den hund", "--beam-size", beam,
                     "--plot", str(tmp_path / "a.png")]) == 0
        printed = capsys.readouterr().out.splitlines()[0]
        ids = translator.translate_ids("ich sehe den hund", int(beam))
        tokens = [translator.tgt_vocab.itos[i] for i in ids if i != EOS_ID]
        assert "".join(tokens) == printed and plotted[-1][1][:len(tokens)] == tokens
        limit = translator.output_limit(translator._encode(["ich sehe den hund"])[1])
        ended = EOS_ID in ids or len(tokens) < limit
        assert plotted[-1][1][len(tokens):] == (["</s>"] if ended else [])
