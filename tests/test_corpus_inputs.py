"""Corpora as users hand them over: folders with hidden and upper-case files, UTF-16 and gzip
files, CRLF line ends, and ``rnnkit eval`` given a folder or a damaged recogniser checkpoint."""
import gzip
import json

import pytest

from rnnkit.cli.main import main
from rnnkit.data import DataError, read_text
from rnnkit.models import LMConfig
from rnnkit.tasks.lm import (LMData, build_lm_task, eval_streams, evaluate_file, load_lm,
                             read_corpus, stream_loss)
from rnnkit.train.checkpoint import save_checkpoint

from lm_fixtures import ENGLISH, write_corpus

TINY = ["--seq-len", "16", "--batch", "4", "--layers", "1", "--hidden", "8", "--embed", "8",
        "--eval-every", "2", "--warmup-steps", "0", "--max-steps", "2", "--quiet"]


def lm_task(data, log=lambda *a: None):
    return build_lm_task(LMData(data=str(data), seq_len=16, batch=4),
                         LMConfig(cell="lstm", layers=1, hidden=8), log=log)


@pytest.fixture(scope="module")
def lf_run(tmp_path_factory):
    """A tiny LM run trained on LF text, and that text's file."""
    folder = tmp_path_factory.mktemp("lf")
    corpus = write_corpus(folder, ENGLISH)
    assert main(["train", "lm", "--data", str(corpus), "--out", str(folder / "run"), *TINY]) == 0
    return folder / "run", corpus


def one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# ----------------------------------------------------------------- 1. folders of .txt files
def test_folder_skips_hidden_files_and_counts_any_case_of_txt(tmp_path):
    books = tmp_path / "books"
    (books / "sub").mkdir(parents=True)
    (books / ".ipynb_checkpoints").mkdir()
    (books / "a.txt").write_text(ENGLISH[:300], encoding="utf-8")
    (books / "sub" / "B.TXT").write_text(ENGLISH[300:], encoding="utf-8")
    (books / ".ipynb_checkpoints" / "a-checkpoint.txt").write_text("leak\n", encoding="utf-8")
    (books / "._a.txt").write_bytes(b"\x00\x05\x16\x07Mac OS X        \x00\x02")   # AppleDouble
    (books / "notes.md").write_text("# not a book\n", encoding="utf-8")
    assert read_corpus(str(books)) == (books, ENGLISH[:300] + "\n" + ENGLISH[300:])
    lines = []
    lm_task(books, log=lines.append)
    assert lines[0].startswith(f"{books}: 2 .txt files, ")


# ----------------------------------------------------------------- 2. UTF-16 and gzip files
@pytest.mark.parametrize("codec, why, order, iconv", [
    ("utf-16", "a byte-order mark FF FE", "little", "UTF-16"),     # Python writes it LE
    ("utf-16-be", "no byte-order mark", "big", "UTF-16BE"),
    ("utf-16-le", "no byte-order mark", "little", "UTF-16LE"),
])
def test_utf16_is_named_with_the_iconv_line(tmp_path, codec, why, order, iconv):
    p = tmp_path / "book.txt"
    p.write_bytes(("Café au lait\r\n" * 3).encode(codec))
    with pytest.raises(DataError) as e:
        read_text(p)
    assert str(e.value) == (f"{p}: UTF-16 text ({why}, {order}-endian); re-encode it as UTF-8, "
                            f"e.g. iconv -f {iconv} -t UTF-8 book.txt > book-utf8.txt")


def test_big_endian_bom_and_binary_files_that_are_not_utf16(tmp_path):
    p = tmp_path / "be.txt"
    p.write_bytes(b"\xfe\xff" + "月光 ok\n".encode("utf-16-be"))
    with pytest.raises(DataError, match=r"UTF-16 text \(a byte-order mark FE FF, big-endian\)"):
        read_text(p)
    for raw in (b"\xff\xfe\x00binary", b"a\x00", b"text\x00\x01\x02binary!", b"ab\x00\x00cdef"):
        p.write_bytes(raw)
        with pytest.raises(DataError, match=r"be.txt:1: looks like a binary file"):
            read_text(p)


def test_gzip_is_read_and_its_errors_name_lines_of_the_text(tmp_path):
    plain = write_corpus(tmp_path, ENGLISH)
    packed = tmp_path / "corpus.txt.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_text(packed) == ENGLISH
    assert read_corpus(str(packed))[1] == ENGLISH
    packed.write_bytes(gzip.compress("one\ntwo\ncafé\n".encode("latin-1")))
    with pytest.raises(DataError, match=r"corpus.txt.gz:3: not UTF-8 \(byte 0xe9"):
        read_text(packed)
    packed.write_bytes(gzip.compress(plain.read_bytes())[:40])
    with pytest.raises(DataError, match=r"corpus.txt.gz: gzip-compressed, but it cannot be "
                                        r"decompressed \(.*\); is the file complete\?$"):
        read_text(packed)


# ----------------------------------------------------------------- 3. CRLF line ends
def test_crlf_and_lone_cr_read_as_lf(tmp_path):
    lf = lm_task(write_corpus(tmp_path, ENGLISH, "lf.txt"))
    for end in ("\r\n", "\r"):
        p = tmp_path / "other.txt"
        p.write_bytes(ENGLISH.replace("\n", end).encode())
        task = lm_task(p)
        assert "\r" not in task.vocab.itos
        assert task.vocab.to_dict() == lf.vocab.to_dict()
        assert task.train.x.equal(lf.train.x) and task.val.x.equal(lf.val.x)


def test_lf_run_scores_crlf_text_as_its_lf_copy(lf_run, tmp_path):
    """An LF-trained run scores its LF text as before (the line ends change nothing there), and
    the same text with CRLF ends alike (before, '\\r' was not in its vocabulary)."""
    run, corpus = lf_run
    model, vocab = load_lm(run)
    before = stream_loss(model, eval_streams(vocab.encode(corpus.read_text()), 4, 16))
    assert evaluate_file(run, corpus)["loss"] == before
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(ENGLISH.replace("\n", "\r\n").encode())
    assert evaluate_file(run, crlf)["loss"] == before


# ----------------------------------------------------------------- 4. eval of a folder
def test_eval_reads_a_folder_for_lm_runs_only(lf_run, tmp_path, capsys):
    run, corpus = lf_run
    books = tmp_path / "books"
    books.mkdir()
    (books / "a.txt").write_text(ENGLISH[:300], encoding="utf-8")
    (books / "b.txt").write_text(ENGLISH[300:], encoding="utf-8")
    joined = write_corpus(tmp_path, ENGLISH[:300] + "\n" + ENGLISH[300:], "joined.txt")
    assert evaluate_file(run, books)["loss"] == evaluate_file(run, joined)["loss"]
    assert main(["eval", str(run), str(books), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["file"] == str(books)
    (books / "c.txt").write_text("ROMEO.\nZebra!\n", encoding="utf-8")
    assert f"{books / 'c.txt'}:2: token 'Z' is not in" in one_line_error(
        capsys, ["eval", str(run), str(books)])
    other = tmp_path / "s2s.pt"
    save_checkpoint(other, {"kind": "seq2seq"})
    assert one_line_error(capsys, ["eval", str(other), str(books)]).startswith(
        f"rnnkit: error: {books}: a folder; expected a file")


# ----------------------------------------------------------------- 5. recognize runs
@pytest.mark.parametrize("kind", ["recognize", "image-to-text"])
def test_eval_of_a_recogniser_checkpoint_without_a_model_is_one_line(tmp_path, capsys, kind):
    run = tmp_path / "r.pt"
    save_checkpoint(run, {"kind": kind})
    data = write_corpus(tmp_path, "a.png\tabc\n", "list.tsv")
    err = one_line_error(capsys, ["eval", str(run), str(data)])
    assert str(run) in err and "unknown run kind" not in err
