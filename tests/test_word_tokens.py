"""The classifier's word tokens in scripts with combining marks and in other Unicode forms, the
runs made before them, and byte-order marks inside a file."""
import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.data.text_tokens import words, words_v1
from rnnkit.data.text import decode_text
from rnnkit.tasks.classify_trained import Classifier
from rnnkit.train import save_checkpoint


@pytest.mark.parametrize("text, want", [
    ("फिल्म अच्छी है", ["फिल्म", "अच्छी", "है"]),             # Devanagari's vowel signs, virama
    ("الْحَمْدُ لِلَّهِ", ["الْحَمْدُ", "لِلَّهِ"]),                  # Arabic's harakat
    ("שָׁלוֹם", ["שָׁלוֹם"]),                                  # Hebrew's niqqud
    ("cafe\u0301 ＡＢＣ It's GOOD!", ["café", "abc", "it's", "good", "!"]),   # NFD, full width
])
def test_a_words_marks_stay_inside_it(text, want):
    """Python's \\w matches no combining mark: each vowel sign, virama and haraka was a token of
    its own (फिल्म: फ / ि / ल / ् / म), and NFD text a vocabulary apart from NFC."""
    assert words(text) == want
    assert words_v1("फिल्म") == ["फ", "ि", "ल", "्", "म"]           # the runs made before


def test_characters_of_scripts_without_spaces_are_words_of_their_own():
    """Code-switched Chinese and English read as words glued a clause to the English words
    beside it ("feature有点terrible"), a token no other text holds; runs made at word form 2
    read their texts as they were trained."""
    from rnnkit.data.text_tokens import word_splitter, words_v2
    assert words("这个new feature有点terrible。") == ["这", "个", "new", "feature", "有", "点",
                                                   "terrible", "。"]
    assert words("東京タワーok") == ["東", "京", "タ", "ワ", "ー", "ok"]
    assert words("ពិភពលោក") == ["ពិ", "ភ", "ព", "លោ", "ក"]    # Khmer: each with its marks
    assert words("㍿ abc㋐") == ["株", "式", "会", "社", "abc", "ア"]   # such only after NFKC
    assert words_v2("这个new feature") == ["这个new", "feature"]
    assert word_splitter("word", 2) is words_v2 and word_splitter("word", 1) is words_v1
    assert word_splitter("word") is words


def test_a_run_made_before_reads_words_as_it_was_trained_and_resumes_so(tmp_path, capsys):
    from task_fixtures import write_labelled
    data = write_labelled(tmp_path)
    out = tmp_path / "run"
    flags = ["train", "classify", "--data", str(data), "--out", str(out), "--tokens", "word",
             "--max-steps", "2", "--eval-every", "2", "--quiet"]
    assert main(flags) == 0
    assert Classifier.load(out).encoder.split is words
    for name in ("best.pt", "last.pt"):                    # as runs before word_form wrote them
        ckpt = torch.load(out / name, weights_only=True)
        del ckpt["word_form"], ckpt["digest"]
        save_checkpoint(out / name, {k: v for k, v in ckpt.items()
                                     if k not in ("format", "version")})
    assert Classifier.load(out).encoder.split is words_v1
    capsys.readouterr()
    assert main(flags[:-5] + ["--max-steps", "4", "--resume", "--quiet"]) == 0   # read as made
    assert torch.load(out / "last.pt", weights_only=True)["word_form"] == 1
    assert Classifier.load(out / "last.pt").encoder.split is words_v1


def test_a_byte_order_mark_at_a_lines_start_is_no_text():
    """Two files joined by cat: the second's mark made "\\ufeffneg" a label beside "neg"."""
    raw = "\ufeffpos\ta\nneg\tb\n\ufeffneg\tc\r\n\ufeffpos\td\r\ufeffneg\te".encode()
    assert decode_text(raw, "f") == "pos\ta\nneg\tb\nneg\tc\r\npos\td\rneg\te"
    assert decode_text("a\ufeffb".encode(), "f") == "a\ufeffb"      # inside a line: the text's


def test_a_label_in_another_unicode_form_is_the_models(tmp_path, capsys):
    """Labels tốt/xấu in NFD in the validation file were refused: "unknown label 'xấu'; the
    model knows ['tốt', 'xấu']", two strings that look the same."""
    import unicodedata
    from rnnkit.tasks.classify_trained import evaluate_file
    rows = ["tốt\tphim hay lắm", "xấu\tphim dở quá", "tốt\trất thích", "xấu\tchán lắm"] * 10
    (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    nfd = unicodedata.normalize("NFD", "\n".join(rows[:8]) + "\n")
    (tmp_path / "val.tsv").write_text(nfd, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "classify", "--data", str(tmp_path / "train.tsv"), "--val-data",
                 str(tmp_path / "val.tsv"), "--out", str(out), "--max-steps", "2",
                 "--eval-every", "2", "--quiet"]) == 0, capsys.readouterr().err
    assert evaluate_file(out, tmp_path / "val.tsv")["size"] == 8


def test_yi_and_balinese_are_read_as_characters():
    """Both are written without spaces between words: auto read a whole line as one word."""
    from rnnkit.data.text_tokens import detect_tokens
    assert detect_tokens(["ꆈꌠꁱꂷꀋꉌꌐ", "ꑭꆏꉢꌠꅉꆹ"]) == "char"
    assert detect_tokens(["ᬅᬓ᭄ᬱᬭᬩᬮᬶ", "ᬲ᭄ᬯᬲ᭄ᬢ᭄ᬬᬲ᭄ᬢᬸ"]) == "char"
