"""Trained models used from Python and trained on one's own files: a bare string where a list
is meant (each character read as a text), bytes or None inside a list, a sentence not nested in
a list, a beam of 1.5, a count of 0, a float64 model; training from Python into a folder that
holds a run; the progress bar's end; given parts that repeat training examples, and tags only a
held-out file holds."""
import io

import pytest
import torch

from rnnkit.tasks.classify_trained import Classifier
from rnnkit.tasks.cond import generate, most_likely
from rnnkit.tasks.tag_trained import Tagger
from rnnkit.train import CheckpointError, Checkpointer, TrainConfig, Trainer

from seq2seq_fixtures import cond_task, generator, seq2seq_task, translator
from task_fixtures import classify_task, tag_task


def test_a_classifier_wants_a_list_of_texts(tmp_path):
    c = Classifier.from_task(classify_task(tmp_path))
    with pytest.raises(TypeError, match=r"texts must be a list of strs, got a single str: put it "
                                        r"in a list \(\['good'\]\)"):
        c.predict("good")                            # was 4 results, one a character
    for bad, said in ((b"x", "got a single bytes"), ([None], r"texts\[0\] must be a str, got "
                                                              r"NoneType"),
                      ([5], "got int"), (7, "got int")):
        with pytest.raises(TypeError, match=said):
            c.predict(bad)
    assert c.predict(t for t in ["good", "bad"]) == c.predict(["good", "bad"])


def test_a_tagger_wants_token_lists(tmp_path):
    t = Tagger.from_task(tag_task(tmp_path))
    with pytest.raises(TypeError, match=r"sentences\[0\] must be a list of tokens, got a str "
                                        r"\('the dog ran'\): a sentence is a list of words, e.g. "
                                        r"\['the', 'dog', 'ran'\]"):
        t.tag(["the dog ran"])                      # was one tag a character
    with pytest.raises(TypeError, match=r"sentences\[0\]\[1\] must be a str, got int"):
        t.tag([["the", 5]])
    assert len(t.tag([["the", "dog"]])[0]) == 2


def test_a_translator_wants_texts_and_whole_widths(tmp_path):
    tr = translator(seq2seq_task(tmp_path))
    with pytest.raises(TypeError, match="texts must be a list of strs, got a single str"):
        tr.greedy("hund")
    with pytest.raises(TypeError, match=r"texts\[0\] must be a str, got bytes"):
        tr.greedy([b"hund"])                        # was read as 4 unknown tokens
    with pytest.raises(ValueError, match="batch must be >= 1, got 0"):
        tr.greedy(["hund"], batch=0)
    with pytest.raises(TypeError, match="beam_size must be a whole number, got 1.5"):
        tr.beam("hund", 1.5)


def test_a_generator_wants_a_count_and_a_length_of_one_or_more(tmp_path):
    g = generator(cond_task(tmp_path))
    label = g[2].labels[0]
    with pytest.raises(ValueError, match="length must be >= 1, got 0"):
        generate(*g, label, 2, length=0)            # was torch's 'stack expects a non-empty'
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        generate(*g, label, 0)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        most_likely(*g, label, 0)                   # was []
    with pytest.raises(TypeError, match="the condition must be a str, got NoneType"):
        generate(*g, None)
    torch.manual_seed(0)
    assert len(generate(*g, label, 2, length=3)) == 2


def test_training_from_python_does_not_replace_a_run(tmp_path):
    """The command line refused a folder holding a run; Trainer and Checkpointer replaced its
    checkpoints without a word."""
    task = classify_task(tmp_path)
    config = TrainConfig(max_steps=1, eval_every=1, warmup_steps=0)
    Trainer(task, config, [Checkpointer(tmp_path / "run")]).fit()
    before = (tmp_path / "run" / "last.pt").read_bytes()
    with pytest.raises(CheckpointError, match=r"run already holds a run \(last.pt\); a new run "
                                              r"there would replace it"):
        Trainer(task, config, [Checkpointer(tmp_path / "run")]).fit()
    assert (tmp_path / "run" / "last.pt").read_bytes() == before


def test_the_progress_bar_ends_at_the_last_step(tmp_path):
    """With a log every 10 steps a 15-step run's bar stopped at 10/15."""
    from rnnkit.train import ProgressBar
    out = Terminal()
    config = TrainConfig(max_steps=15, eval_every=5, log_every=10, warmup_steps=0)
    Trainer(classify_task(tmp_path), config, [ProgressBar(file=out)]).fit()
    assert out.getvalue().rstrip().split("\r")[-1].lstrip().startswith("100%|") \
        and "15/15" in out.getvalue().split("\r")[-1]


def test_into_a_log_file_the_progress_is_plain_lines(tmp_path, monkeypatch):
    """A bar's frames into a file (no terminal) piled up on one line, \\r after \\r, with the
    evaluation lines glued to them: now each report is a line of its own, every
    PLAIN_EVERY seconds, and no frame is drawn."""
    from rnnkit.train import ProgressBar
    monkeypatch.setattr(ProgressBar, "PLAIN_EVERY", 0.0)
    log = io.StringIO()
    config = TrainConfig(max_steps=30, eval_every=15, log_every=10, warmup_steps=0)
    Trainer(classify_task(tmp_path), config, [ProgressBar(file=log)]).fit()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and "|" not in log.getvalue()
    assert [l.split(" (")[0] for l in lines if "/30" in l] == \
        ["step 10/30", "step 15/30", "step 20/30", "step 30/30"]   # (a log before evaluating)
    first = next(l for l in lines if "/30" in l)
    assert first.startswith("step 10/30 (33%), 0:00:") and " left; loss " in first \
        and ", grad norm " in first
    assert sum(l.startswith("step 15: train ") for l in lines) == 1


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_float64_forecaster_and_recogniser_read_their_inputs_in_float64(tmp_path):
    """Forecast and the recognisers cast their inputs to float32, which a .double() model
    refused (a GRU dtype error, a conv 'expected scalar type Float')."""
    import numpy as np
    from rnnkit.tasks.forecast_trained import Forecast
    from rnnkit.tasks.recognize import Recognizer
    from recognize_fixtures import recognize_task
    from task_fixtures import forecast_task
    (tmp_path / "f").mkdir()
    t = forecast_task(tmp_path / "f")
    make = lambda model: Forecast(model, t.scaler, t.y, t.labels, t.names,
                                  (t.train_end, t.val_end), t.data_config.window, t.transform,
                                  t.season)
    single = make(t.model).predict(t.y, [100], 5)
    double = make(t.model.double()).predict(t.y, [100], 5)
    assert double.dtype == np.float64 and np.allclose(single, double, atol=1e-5)
    r = Recognizer.from_task(recognize_task(tmp_path / "r"))
    files = sorted((tmp_path / "r" / "captchas").glob("*.png"))[:2]
    want = r.recognize(files)
    r.model.double()
    assert [text for text, _ in r.recognize(files)] == [text for text, _ in want]


def test_words_want_one_tag_a_token(tmp_path):
    t = Tagger.from_task(tag_task(tmp_path))
    with pytest.raises(ValueError, match="3 tokens and 2 tags: one tag a token"):
        t.words(["the", "dog", "ran"], ["D", "N"])     # was two pairs, 'ran' dropped


def test_given_parts_that_repeat_training_examples_are_named(tmp_path, capsys):
    """A --test-data of training lines (or --data itself) scored accuracy 1.0 without a word
    (seq2seq and the recognisers said so; classify and tag did not)."""
    from rnnkit.models.classifier import ClassifierConfig
    from rnnkit.models.tagger import TaggerConfig
    from rnnkit.tasks.classify import ClassifyData, build_classify_task
    from rnnkit.tasks.tag import TagData, build_tag_task
    from task_fixtures import write_labelled, write_tagged
    labelled, tagged = write_labelled(tmp_path), write_tagged(tmp_path)
    build_classify_task(ClassifyData(data=str(labelled), test_data=str(labelled), batch=8),
                        ClassifierConfig(hidden=8, embed=8), log=lambda *a: None)
    assert f"--test-data {labelled}: " in capsys.readouterr().err
    build_tag_task(TagData(data=str(tagged), val_data=str(tagged), batch=8, min_count=1),
                   TaggerConfig(hidden=8, embed=8, char_embed=4, char_hidden=4),
                   log=lambda *a: None)
    err = capsys.readouterr().err
    assert f"--val-data {tagged}: " in err and "sentences are also in the training part" in err


def test_lm_and_cond_name_given_parts_of_their_training_text(tmp_path, capsys):
    """The LM took --val-data of its own --data, or one file as both --val-data and --test-data,
    and the conditional generator its own pairs, without a word."""
    from rnnkit.models.conditional import CondConfig
    from rnnkit.tasks.cond import CondData, build_cond_task
    from rnnkit.train.lm import build_lm_task
    from lm_fixtures import tiny_configs, write_corpus
    from seq2seq_fixtures import write_names
    corpus = write_corpus(tmp_path)
    data, model, _ = tiny_configs(corpus)
    part = tmp_path / "part.txt"
    part.write_text(corpus.read_text(encoding="utf-8")[200:900], encoding="utf-8")
    for val, test in ((corpus, ""), (part, part)):
        data.val_data, data.test_data = str(val), str(test)
        build_lm_task(data, model, log=lambda *a: None)
        err = capsys.readouterr().err
        assert f"--val-data {val}: its text is part of the training text" in err
        assert (f"--test-data {test}: the same text as --val-data" in err) == bool(test)
    names = write_names(tmp_path)
    build_cond_task(CondData(data=str(names), val_data=str(names), batch=16),
                    CondConfig(hidden=8, embed=8, cond_size=8), log=lambda *a: None)
    err = capsys.readouterr().err
    assert f"--val-data {names}: " in err and "pairs are also in the training part" in err


def test_eval_counts_tags_only_a_held_out_file_held_as_unseen(tmp_path, capsys):
    """Tags that only the run's --test-data held joined its tag set, and rnnkit eval of that
    file then said 0 unseen tags (and another run's eval of it 2)."""
    from rnnkit.models.tagger import TaggerConfig
    from rnnkit.tasks.common import train
    from rnnkit.tasks.tag import TagData, build_tag_task
    from rnnkit.tasks.tag_trained import evaluate_file
    from task_fixtures import write_tagged
    held = tmp_path / "held.txt"
    held.write_text("the/D dog/N ran/QQ\n")
    task = build_tag_task(TagData(data=str(write_tagged(tmp_path)), test_data=str(held),
                                  batch=8, min_count=1),
                          TaggerConfig(hidden=8, embed=8, char_embed=4, char_hidden=4),
                          log=lambda *a: None)
    train(task, TrainConfig(max_steps=1, eval_every=1, warmup_steps=0), tmp_path / "run",
          quiet=True, log=lambda *a: None)
    capsys.readouterr()
    out = evaluate_file(tmp_path / "run", held)
    assert out["unseen_tags"] == 1
    assert "1 of 3 tokens carry tags the model never saw (QQ)" in capsys.readouterr().err


def test_a_one_example_file_is_a_test_part_for_the_classifier(tmp_path):
    """A file to score may hold one example (tag and seq2seq took one; classify asked for 2)."""
    from rnnkit.models.classifier import ClassifierConfig
    from rnnkit.tasks.classify import ClassifyData, build_classify_task
    from rnnkit.tasks.classify_trained import evaluate_file
    from rnnkit.tasks.common import train
    from task_fixtures import write_labelled
    one = tmp_path / "one.tsv"
    one.write_text("positive\ta good film\n")
    task = build_classify_task(ClassifyData(data=str(write_labelled(tmp_path)),
                                            test_data=str(one), batch=8),
                               ClassifierConfig(hidden=8, embed=8), log=lambda *a: None)
    train(task, TrainConfig(max_steps=1, eval_every=1, warmup_steps=0), tmp_path / "run",
          quiet=True, log=lambda *a: None)
    assert evaluate_file(tmp_path / "run", one)["size"] == 1
