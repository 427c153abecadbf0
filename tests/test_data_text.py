"""Corpus reading (bad files rejected with the path in the message), the split, stream batches."""
import pytest
import torch

from rnnkit.data import DataError, StreamBatches, read_text, split_ids
from rnnkit.data.datasets import resolve


def test_reads_utf8_and_drops_bom(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes("\ufeff月光 ok\n".encode("utf-8"))
    assert read_text(p) == "月光 ok\n"


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (b"  \n\n", "empty"),
    (b"text\x00\x01\x02binary", "binary"),
    (b"line one\nline two caf\xe9\n", "not UTF-8"),
])
def test_bad_corpus_rejected_with_path(tmp_path, content, words):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(DataError, match=words) as e:
        read_text(p)
    assert str(p) in str(e.value)


def test_non_utf8_names_line(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes("one\ntwo\ncafé\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt:3: not UTF-8 \(byte 0xe9"):
        read_text(p)


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(DataError, match="neither a data set name"):
        resolve(str(tmp_path / "nope.txt"))


def test_split_is_last_fraction():
    train, val = split_ids(range(100), 0.05)
    assert train.tolist() == list(range(95)) and val.tolist() == list(range(95, 100))


def test_stream_batches_are_contiguous_per_row():
    ids = torch.arange(41)                       # 40 inputs + 1 target, 4 streams of 10
    b = StreamBatches(ids, batch=4, seq_len=3)
    assert len(b) == 4                           # 3 + 3 + 3 + 1 columns
    x0, y0, first0 = b[0]
    x1, _, first1 = b[1]
    assert first0 and not first1
    assert x0.shape == (4, 3) and torch.equal(y0, x0 + 1)
    assert torch.equal(x1[:, 0], x0[:, -1] + 1)  # row r of batch 1 continues row r of batch 0
    assert x0[:, 0].tolist() == [0, 10, 20, 30]
    assert b[len(b)][2] and torch.equal(b[len(b)][0], x0)   # wraps to a new pass
    assert b[3][0].shape == (4, 1)


def test_stream_batches_too_few_tokens():
    with pytest.raises(DataError, match="too few"):
        StreamBatches(torch.arange(3), batch=4, seq_len=2)
