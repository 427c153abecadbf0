"""Lines and fields that hold only invisible characters (a zero-width space, a word joiner, a
BOM, control characters): read as blank wherever a blank line or field is, not as texts that
are labelled, translated, tagged or scored as examples."""
import json
from types import SimpleNamespace

import pytest

from rnnkit.cli.main import main
from rnnkit.cli.recognize import shown
from rnnkit.data import DataError
from rnnkit.data.labelled import read_labelled
from rnnkit.data.pairs import read_pairs
from rnnkit.data.text import blank
from rnnkit.tasks.classify_trained import Classifier
from rnnkit.tasks.common import train
from rnnkit.tasks.tag_trained import Tagger
from rnnkit.tasks.translation import Translator
from rnnkit.train import TrainConfig

from test_classify_tokens import zh_task

INVISIBLE = ["\u200b", "\u200c", "\u2060", "\ufeff", "\x01", "\x7f", " \u200b\u00a0 "]


def test_blank_is_white_space_and_invisible_characters_only():
    assert all(blank(x) for x in INVISIBLE + ["", " ", "\u3000"])
    assert not any(blank(x) for x in ["a", "\u200ba", "\u0301", "好"])


@pytest.mark.parametrize("field", INVISIBLE)
def test_a_text_or_a_pair_side_of_invisible_characters_is_refused_at_its_line(tmp_path, field):
    """They were read as texts: trained on, counted and scored as examples."""
    labelled = tmp_path / "labelled.tsv"
    labelled.write_text(f"pos\tgood film\nneg\tbad film\npos\t{field}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"labelled.tsv:3: empty text for label 'pos'"):
        read_labelled(labelled)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"a b\tx y\n{field}\tz\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs.tsv:2: .* got an empty source"):
        read_pairs(pairs)


@pytest.mark.parametrize("line", INVISIBLE)
def test_a_line_of_invisible_characters_is_a_blank_line_of_a_data_file(tmp_path, line):
    """A blank line is passed over; one of a zero-width space was refused ("got 1 field")."""
    labelled = tmp_path / "labelled.tsv"
    labelled.write_text(f"pos\tgood film\n{line}\nneg\tbad film\n{line}\t{line}\n", "utf-8")
    assert read_labelled(labelled) == [("pos", "good film"), ("neg", "bad film")]
    fasttext = tmp_path / "labelled.txt"
    fasttext.write_text(f"__label__pos good film\n{line}\n__label__neg bad film\n", "utf-8")
    assert read_labelled(fasttext) == [("pos", "good film"), ("neg", "bad film")]
    for name, text in (("pairs.tsv", f"a b\tx y\n{line}\nc\tz\n"),
                       ("pairs.jsonl", f'{{"source": "a b", "target": "x y"}}\n{line}\n'
                                       f'{{"source": "c", "target": "z"}}\n')):
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert read_pairs(tmp_path / name) == [("a b", "x y"), ("c", "z")]


def test_json_pairs_whose_first_record_holds_a_line_separator_read_as_json(tmp_path):
    """str.splitlines cut the first record at its raw U+2028, so the file was read as a TSV and
    refused for its want of tabs."""
    path = tmp_path / "pairs.txt"
    rows = [{"source": "a b\u2028c", "target": "x"}, {"source": "d", "target": "y z"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    assert [(s, t) for s, t in read_pairs(path)] == [("a b\u2028c", "x"), ("d", "y z")]


def test_predict_passes_over_invisible_lines_and_refuses_an_invisible_argument(tmp_path, capsys):
    task = zh_task(tmp_path)
    out = tmp_path / "run"
    train(task, TrainConfig(max_steps=2, eval_every=2), out, quiet=True, log=lambda *a: None)
    lines = tmp_path / "lines.txt"
    lines.write_text("好书\n\u200b\n\x01\n差\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", str(out), "--file", str(lines)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and printed[0].endswith("好书") and printed[1].endswith("差")
    with pytest.raises(DataError, match=r"argument:2: empty text"):
        Classifier.load(out).predict(["好书", "\u2060"], "argument")


def test_a_character_tagger_reads_a_zero_width_space_as_a_separator():
    """It was a character of its own, glued into the next word; the other invisible characters
    are characters of words, as training reads them (a joiner in a Persian word or an emoji,
    a soft hyphen), and are printed back."""
    chars = SimpleNamespace(char_tokens=True,
                            encoder=SimpleNamespace(vocab=SimpleNamespace(stoi={})))
    assert Tagger.split(chars, "人民\u200b很好") == ["人", "民", "很", "好"]
    assert Tagger.split(chars, "\u200b") == []
    nbsp = SimpleNamespace(char_tokens=True,   # trained on "New\u00a0York/ns": a character
                           encoder=SimpleNamespace(vocab=SimpleNamespace(stoi={"\u00a0": 5})))
    assert Tagger.split(nbsp, "我New\u00a0York x") == ["我", "N", "e", "w", "\u00a0", "Y", "o",
                                                      "r", "k", "x"]
    assert Tagger.split(chars, "New\u00a0York") == list("NewYork")   # (one that never saw it)
    spaced = SimpleNamespace(char_tokens=True,   # CoNLL-U forms with spaces ("học sinh"): an
                             encoder=SimpleNamespace(vocab=SimpleNamespace(stoi={" ": 5})))
    assert Tagger.split(spaced, "ab cd") == list("abcd")   # input's space still separates
    assert Tagger.split(chars, "می\u200cخو co\u00adop") == \
        ["م", "ی", "\u200c", "خ", "و", "c", "o", "\u00ad", "o", "p"]


def test_translate_refuses_an_invisible_argument():
    translator = Translator.__new__(Translator)
    with pytest.raises(DataError, match="argument 1: empty source sentence"):
        translator.check_lengths(["\u200b"], "argument")


def test_recognized_file_names_keep_to_their_line_and_column():
    assert shown("a\nb\tc.png") == "a\\nb\\tc.png" and shown("日本.png") == "日本.png"
    assert shown("x\u2028y\u202e.png") == "x\\u2028y\\u202e.png"
    assert shown("می\u200cخواهم.wav") == "می\u200cخواهم.wav"   # a joiner is part of a name


def test_a_conllu_line_of_a_zero_width_space_ends_a_sentence(tmp_path):
    """The column reader took it for a blank line, the CoNLL-U reader refused it as a token line
    of one column, without showing it."""
    from rnnkit.data.tagged import read_tagged
    token = "{}\t{}\t_\t{}\t_\t_\t_\t_\t_\t_\n"
    path = tmp_path / "two.conllu"
    path.write_text(token.format(1, "the", "DET") + token.format(2, "dog", "NOUN") + "\u200b\n"
                    + token.format(1, "runs", "VERB") + "\n", encoding="utf-8")
    sentences = read_tagged(path)
    assert [words for words, _ in sentences] == [["the", "dog"], ["runs"]]
    path.write_text(token.format(1, "the", "DET") + "the\tDET\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"two.conllu:2: CoNLL-U needs 10 .* got 2: 'the\\tDET'"):
        read_tagged(path)


def test_an_invisible_character_in_a_transcript_is_warned_about(tmp_path, capsys):
    """A zero-width space in one transcript became a class of the alphabet without a word."""
    from recognize_fixtures import TINY_MODEL, tone_digits, write_tsv, write_wav
    from rnnkit.models.recognizer import RecognizerConfig
    from rnnkit.tasks.recognize import build_recognize_task
    from rnnkit.tasks.recognize_data import RecognizeData
    rows = []
    for i, digits in enumerate(["12", "21", "1\u200b2", "2", "112", "221", "12", "2"]):
        write_wav(tmp_path / f"u{i}.wav", tone_digits(digits.replace("\u200b", ""), seed=i))
        rows.append((f"u{i}.wav", digits))
    data = RecognizeData(data=str(write_tsv(tmp_path / "list.tsv", rows)), batch=2, n_mels=16,
                         test_fraction=0.25, val_fraction=0.25)
    capsys.readouterr()
    task = build_recognize_task(data, RecognizerConfig(**TINY_MODEL), log=lambda *a: None)
    err = capsys.readouterr().err
    assert "1 transcript(s) hold invisible characters" in err and "list.tsv:3" in err
    assert "alphabet '12\\u200b'; drop them" in err and task.alphabet == "12\u200b"


@pytest.mark.parametrize("tokens", ["word", "char"])
def test_a_tagger_reads_text_in_the_other_unicode_form_as_its_own(tmp_path, tokens):
    """Words typed in NFD before a tagger trained in NFC were unknown (26 of 90 of a Korean
    tagger's tags changed) and said as 'the model's vocabulary holds 0% ...'."""
    import unicodedata

    from rnnkit.tasks.tag_trained import Tagger
    lines = ["Tôi/P rất/R thích/V sách/N", "Hôm_nay/N trời/N đẹp/A", "Cuốn/N sách/N hay/A"]
    data = tmp_path / "vi.txt"
    data.write_text("\n".join(lines * 8) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "tag", "--data", str(data), "--out", str(out), "--tokens", tokens,
                 "--max-steps", "3", "--eval-every", "3", "--min-count", "1", "--quiet"]) == 0
    tagger = Tagger.load(out)
    text = "Tôi rất thích sách đẹp"
    nfc, nfd = (tagger.split(unicodedata.normalize(f, text)) for f in ("NFC", "NFD"))
    if tokens == "char":   # the line read in the vocabulary's form: the same characters
        assert nfc == nfd == [c for c in text if c != " "]
    else:                  # each word looked up in it
        assert nfd != nfc and tagger.in_form(nfd) == nfc
    assert tagger.tag([nfd]) == tagger.tag([nfc])
    from rnnkit.view.text_kinds import TagView   # the view reads them as tag() does
    view = TagView(tagger)
    got = [view.read(unicodedata.normalize(f, text)) for f in ("NFC", "NFD")]
    assert got[0].unknown == got[1].unknown and [r.predictions["tag_probabilities"]
                                                 for r in got][0] == \
        got[1].predictions["tag_probabilities"]
