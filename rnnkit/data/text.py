"""Reading a UTF-8 corpus safely, the fixed train/validation split, and char-rnn stream batches.

Shapes: N tokens, B batch (parallel streams), T time steps per batch.
"""
import csv
import io
import os

import torch

VAL_FRACTION = 0.05   # the last 5% of the token stream is validation, the rest training


class DataError(ValueError):
    """A corpus that cannot be used; the message names the file and, where known, the line."""


def read_text(path):
    """The text of a UTF-8 file; empty, binary (NUL bytes) or non-UTF-8 files raise DataError."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file: {e.strerror}") from e
    if not raw.strip():
        raise DataError(f"{path}: the file is empty (expected UTF-8 text, got {len(raw)} bytes"
                        f"{' of whitespace' if raw else ''})")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{path}:{_line_of(raw, nul)}: looks like a binary file (NUL byte at "
                        f"offset {nul}); expected UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}:{_line_of(raw, e.start)}: not UTF-8 (byte 0x{raw[e.start]:02x} "
                        f"at offset {e.start}: {e.reason}); re-encode the file as UTF-8") from None
    return text.removeprefix("\ufeff")   # a byte-order mark is not part of the text


def _line_of(raw, offset):
    """The line of byte ``offset``, counted as :func:`numbered_lines` counts."""
    return raw.count(b"\n", 0, offset) + raw.count(b"\r", 0, offset) \
        - raw.count(b"\r\n", 0, offset) + 1


def numbered_lines(text):
    """(line number, line) for every line of ``text``, its end cut. Lines end at ``\\n``,
    ``\\r\\n`` or ``\\r`` only (not at the form feeds and Unicode separators
    ``str.splitlines`` also splits at), so the numbers are those an editor shows and the csv
    reader counts."""
    for n, line in enumerate(io.StringIO(text, newline=""), 1):
        yield n, line.rstrip("\r\n")


def csv_records(text, path, delimiter=","):
    """(line number, fields) for every record of CSV ``text`` (a blank line is ``[]``). The number
    is the line where the record starts: a quoted field may span lines. Broken quoting (a quote
    never closed, text after a closing quote) and over-long fields raise DataError naming the
    file and line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(_csv_problem(path, start, reader.line_num, str(e))) from None
        yield start, row


def _csv_problem(path, start, end, reason):
    """The message for a csv.Error in the record that starts on line ``start`` and had been read
    up to line ``end`` when it failed."""
    if reason.startswith("unexpected end of data"):
        return (f"{path}:{start}: unterminated quote: the quoted field opened on this line is "
                f"never closed (the file ends inside it, on line {end}); close it, or write a "
                f"quote inside a field as \"\"")
    if reason.startswith("field larger than field limit"):
        spans = f"; the quoted field opened here runs on to line {end}: is its closing quote " \
                f"missing?" if end > start else ""
        return f"{path}:{start}: a field longer than {csv.field_size_limit():,} characters{spans}"
    if "expected after" in reason:
        return (f"{path}:{end}: text after the closing quote of a quoted field (expected the "
                f"delimiter or the end of the line); write a quote inside a quoted field as \"\"")
    return f"{path}:{end}: malformed CSV: {reason}"


def split_ids(ids, val_fraction=VAL_FRACTION, path=None):
    """(train, val) 1-D long tensors: the last ``val_fraction`` of the tokens is validation.
    Too few tokens raise DataError naming ``path``, the file of the tokens, when given.

    A fixed contiguous split rather than a random one, so validation text is unseen prose
    (with the Shakespeare corpus: the last plays in file-name order).
    """
    ids = torch.as_tensor(ids, dtype=torch.long)                      # (N,)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = max(2, int(len(ids) * val_fraction))
    if len(ids) - n_val < 2:
        raise DataError(f"{path or 'corpus'}: too short to split: {len(ids)} tokens, need at least "
                        f"{n_val + 2}")
    return ids[:-n_val], ids[-n_val:]


class StreamBatches:
    """Truncated-BPTT batches over B contiguous streams, as char-rnn lays them out.

    The token stream is cut into B equal streams (rows); batch i is columns [i·T, (i+1)·T) as
    input and the same shifted by one as target. Consecutive batches continue every row where the
    previous one stopped, so a model can carry its hidden state from batch i to i+1 (detached).
    Indexing wraps around: batch ``i`` is batch ``i % len(self)``; index 0 starts a new pass.
    """

    def __init__(self, ids, batch, seq_len):
        ids = torch.as_tensor(ids, dtype=torch.long)
        if batch < 1 or seq_len < 1:
            raise ValueError(f"batch and seq_len must be >= 1, got batch={batch}, seq_len={seq_len}")
        per_row = (len(ids) - 1) // batch
        if per_row < 1:
            raise DataError(f"{len(ids)} tokens are too few for {batch} streams; use a smaller "
                            f"--batch or a bigger corpus")
        self.batch, self.seq_len = batch, seq_len
        self.x = ids[: batch * per_row].view(batch, per_row)                # (B, N/B)
        self.y = ids[1: batch * per_row + 1].view(batch, per_row)           # (B, N/B)
        self.n = -(-per_row // seq_len)                                     # last batch may be short

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        """(x, y, first): x, y (B, T) long; first is True at the start of a pass over the data."""
        i %= self.n
        cols = slice(i * self.seq_len, (i + 1) * self.seq_len)
        return self.x[:, cols], self.y[:, cols], i == 0

    def __iter__(self):
        return (self[i] for i in range(self.n))

    @property
    def tokens_per_pass(self):
        return self.x.numel()
