"""Reading a UTF-8 corpus safely, the fixed train/validation split, and char-rnn stream batches.

Shapes: N tokens, B batch (parallel streams), T time steps per batch.
"""
import csv
import gzip
import io
import itertools
import json
import os
import re
import stat
import unicodedata
import zlib
from pathlib import Path

import torch

VAL_FRACTION = 0.05   # the last 5% of the token stream is validation, the rest training
GZIP_MAGIC = b"\x1f\x8b"   # the first bytes of every gzip file; never of UTF-8 text
UTF16_BOMS = {b"\xff\xfe": "LE", b"\xfe\xff": "BE"}


class DataError(ValueError):
    """A corpus that cannot be used; the message names the file and, where known, the line."""


INVISIBLE = ("Cc", "Cf")   # control and format characters: zero-width spaces and joiners, a BOM


def blank(text):
    """Whether ``text`` holds nothing to read: white space and invisible characters only
    (control and format characters: U+200B, U+2060, U+FEFF, U+0001, ...; ``str.strip`` keeps
    them, so a line of a zero-width space was read as a text)."""
    return all(c.isspace() or unicodedata.category(c) in INVISIBLE for c in text)


def clip(x, n=80):
    """``x`` (a string, else its repr) cut to ``n`` characters and "..." for a message."""
    s = x if isinstance(x, str) else repr(x)
    return s if len(s) <= n else s[:n] + "..."


def expanded(path):
    """``Path(path)`` with ``~`` and ``~user`` expanded; a user with no home folder is a
    DataError (pathlib raises a RuntimeError of its own)."""
    try:
        return Path(os.fspath(path)).expanduser()
    except RuntimeError:
        raise DataError(f"{path}: {str(path).split(os.sep)[0]} is no user with a home "
                        f"folder") from None


def read_text(path):
    """The text of a UTF-8 file, gzip-compressed or not (errors then name lines of the decompressed
    text); empty, binary (NUL bytes), UTF-16 or non-UTF-8 files raise DataError."""
    path = os.fspath(path)
    try:
        kind = os.stat(path).st_mode
        if stat.S_ISCHR(kind) or stat.S_ISBLK(kind):   # /dev/zero never ends: read to no end
            raise DataError(f"{path}: a device, not a file of text; save the data to a file "
                            f"and give that")
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        if os.path.islink(path) and not os.path.exists(path):
            raise DataError(f"{path}: a symbolic link to {os.readlink(path)!r}, which leads to "
                            f"no file") from e
        raise DataError(f"{path}: cannot read the file: {e.strerror}{named_set(path)}") from e
    gz = raw.startswith(GZIP_MAGIC)
    if gz:
        raw = _gunzip(raw, path)
    if not raw.strip():
        raise DataError(f"{path}: the file is empty (expected UTF-8 text, got {len(raw):,} "
                        f"byte{'s' * (len(raw) != 1)}{' of whitespace' if raw else ''})")
    return decode_text(raw, path, gz=gz)


def named_set(path):
    """Where a missing file's name is a data set's: a note that this file is not read by name
    (the task's --data, and lm's and tag's --val-data and --test-data, read sets by name)."""
    from rnnkit.data.datasets import DATASETS
    ds = DATASETS.get(str(path))
    if ds is None or os.path.exists(path):
        return ""
    return (f" ({path} names a data set, which is read by name only where the flag's help "
            f"lists its kind; `rnnkit data fetch {path}` prints its file)")


def decode_text(raw, path, iconv=True, gz=False):
    """``raw`` bytes as UTF-8 text without its byte-order mark; UTF-16, binary (NUL bytes) or
    other bytes raise DataError naming ``path`` and the line (with an iconv command for the
    file where ``iconv``; ``gz``: the bytes were decompressed, so the command is too)."""
    utf16 = _utf16_order(raw)
    if utf16:
        raise DataError(_utf16_problem(path, raw, utf16, gz, iconv))
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{path}:{_line_of(raw, nul)}: looks like a binary file (NUL byte at "
                        f"offset {nul}); expected UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:   # bytes 0x80-0x9f: Windows-1252's quotes, dashes and €
        bad = raw.decode("utf-8", "surrogateescape")      # undecodable bytes as U+DC80-DCFF
        code = "CP1252" if re.search("[\udc80-\udc9f]", bad) else "LATIN1"
        name = {"CP1252": "Windows-1252", "LATIN1": "Latin-1"}[code]
        fix = (f"re-encode the file as UTF-8, e.g. zcat {path} | iconv -f {code} -t UTF-8 | "
               f"gzip > utf8-copy.gz (if it is {name})" if iconv and gz else
               f"re-encode the file as UTF-8, e.g. iconv -f {code} -t UTF-8 {path} > "
               f"utf8-copy (if it is {name})" if iconv else
               f"give UTF-8 text, e.g. through iconv -f {code} -t UTF-8 (if it is {name})")
        raise DataError(f"{path}:{_line_of(raw, e.start)}: not UTF-8 (byte 0x{raw[e.start]:02x} "
                        f"at offset {e.start}: {e.reason}); {fix}") from None
    # a byte-order mark is not part of the text, nor one at a line's start (files joined by
    # cat: the second's mark made a label of its own, "\ufeffneg" beside "neg")
    return _LINE_BOM.sub("", text.removeprefix("\ufeff"))


_LINE_BOM = re.compile("(?<=[\r\n])\ufeff")


def _gunzip(raw, path):
    """The decompressed bytes of a gzip file's ``raw`` bytes; a damaged file raises DataError."""
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: gzip-compressed, but it cannot be decompressed ({e}); is the "
                        f"file complete?") from None


def _utf16_order(raw):
    """"LE" or "BE" when ``raw`` is UTF-16 text, else None: it decodes as UTF-16 to text without
    control characters (tabs and line ends aside), and half its characters or more have a NUL
    high byte (few a NUL low byte), as Latin text has, or it starts with a byte-order mark and
    has a line break. (Bytes that only happen to decode, as most do, are not taken for it.)"""
    bom = UTF16_BOMS.get(raw[:2])
    if bom is None and b"\x00" not in raw:   # the common case, at no cost
        return None
    le, be = raw[1::2].count(0), raw[::2].count(0)   # NUL high bytes if little-, big-endian
    order = bom or ("LE" if le > be else "BE")
    high, low = (le, be) if order == "LE" else (be, le)
    latin = len(raw) >= 8 and high * 4 >= len(raw) and low * 4 <= high
    if not (latin or bom):
        return None
    try:
        text = raw.decode(f"utf-16-{order.lower()}").removeprefix("\ufeff")[:100_000]
    except UnicodeDecodeError:
        return None
    plain = text.strip() and not any(unicodedata.category(c) == "Cc" and c not in "\t\n\r\f\v"
                                     for c in text)
    return order if plain and (latin or "\n" in text or "\r" in text) else None


def _utf16_problem(path, raw, order, gz=False, iconv=True):
    """The message for a UTF-16 file of byte order ``order``, with the iconv line that fixes it
    (``gz``: a gzip file's decompressed bytes; without ``iconv``, text that is no file, as
    standard input: the converter to put before it)."""
    name, bom = os.path.basename(path), raw[:2] in UTF16_BOMS
    stem, ext = os.path.splitext(name)
    end = "little" if order == "LE" else "big"
    why = f"a byte-order mark {raw[:2].hex(' ').upper()}" if bom else "no byte-order mark"
    code = f"UTF-16{'' if bom else order}"
    if not iconv:
        return (f"{path}: UTF-16 text ({why}, {end}-endian); give UTF-8 text, e.g. through "
                f"iconv -f {code} -t UTF-8")
    if gz:
        return (f"{path}: UTF-16 text once decompressed ({why}, {end}-endian); re-encode it as "
                f"UTF-8, e.g. zcat {name} | iconv -f {code} -t UTF-8 | gzip > "
                f"{stem.removesuffix('.txt')}-utf8.txt.gz")
    return (f"{path}: UTF-16 text ({why}, {end}-endian); re-encode it as UTF-8, e.g. iconv -f "
            f"{code} -t UTF-8 {name} > {stem}-utf8{ext or '.txt'}")


def _line_of(raw, offset):
    """The line of byte ``offset``, counted as :func:`numbered_lines` counts."""
    return raw.count(b"\n", 0, offset) + raw.count(b"\r", 0, offset) \
        - raw.count(b"\r\n", 0, offset) + 1


def json_lines(lines, path):
    """(line number, record) for every non-blank line of ``lines`` ((number, line) pairs, as
    :func:`numbered_lines` gives them) read as JSON; a line that is not JSON raises DataError
    naming the file and line."""
    for n, line in lines:
        if blank(line):   # white space or invisible characters only: a blank line
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: not a JSON object ({e.msg} at column {e.colno}; "
                            f"expected JSON lines, an object a line): {line[:80]!r}") from None


def first_line(text):
    """The first line of ``text`` that is not white space only (lines as :func:`numbered_lines`
    reads them: a JSON record holding a raw U+2028 is one line), or ""."""
    return next((line for _, line in numbered_lines(text) if line.strip()), "")


def numbered_lines(text):
    """(line number, line) for every line of ``text``, its end cut. Lines end at ``\\n``,
    ``\\r\\n`` or ``\\r`` only (not at the form feeds and Unicode separators
    ``str.splitlines`` also splits at), so the numbers are those an editor shows and the csv
    reader counts."""
    for n, line in enumerate(io.StringIO(text, newline=""), 1):
        yield n, line.rstrip("\r\n")


# a field of a tab-separated file quoted as the csv module quotes (possessive: the scan of a
# line never backtracks, however many quotes it holds), a whole line of such fields, and a
# quote that its line leaves open
_QUOTED_FIELD = re.compile(r'(?:^|\t)"((?:[^"\n]|"")*+)"(?=\t|$)', re.M)
_ALL_QUOTED = re.compile(r'"(?:[^"]|"")*+"(?:\t"(?:[^"]|"")*+")+')
_OPEN_QUOTE = re.compile(r'(?:^|\t)"(?:[^"\n]|"")*+$', re.M)


def tab_quoted(text):
    """Whether a tab-separated ``text`` quotes fields as the csv module writes them (R's
    ``write.table``, ``csv.QUOTE_ALL``, pandas' ``to_csv(sep="\t")``): first lines whose every
    field is quoted (the first 20; one such line may be sentences in quotes), a quoted field
    holding a doubled quote or a tab, or one holding a line break where the whole file then
    reads as records of one width and its lines do not. Such a file is read with
    :func:`csv_records`; any other line by line, its quotes kept as text."""
    head = list(itertools.islice((line.strip() for _, line in numbered_lines(text)
                                  if line.strip()), 20))
    if len(head) > 1 and all(_ALL_QUOTED.fullmatch(line) for line in head):
        return True
    if any('""' in m.group(1) or "\t" in m.group(1) for m in _QUOTED_FIELD.finditer(text)):
        return True
    if not _OPEN_QUOTE.search(text):
        return False
    try:                    # a text that opens a quote by chance reads so only by chance
        widths = {len(r) for _, r in csv_records(text, "", "\t") if r}
    except DataError:
        return False
    lines = {len(line.split("\t")) for _, line in numbered_lines(text) if line.strip()}
    # every line a whole record of that width: a quote opened in one text and a lone " closing
    # another (an inch mark) would merge two records into one; line breaks inside quoted
    # fields leave lines of fewer fields
    return len(widths) == 1 and lines != widths


def excel_sep(text):
    """(separator, text) where the first line is the ``sep=;`` that Excel writes to name a CSV
    file's separator, that line then blank (the rest keeps its line numbers); else (None,
    text)."""
    first, newline, rest = text.partition("\n")
    m = re.fullmatch(r'"?sep=(.)"?\s*', first.lstrip("\ufeff"))
    return (m.group(1), newline + rest) if m else (None, text)


def csv_records(text, path, delimiter=","):
    """(line number, fields) for every record of CSV ``text`` (a blank line is ``[]``). The number
    is the line where the record starts: a quoted field may span lines. Broken quoting (a quote
    never closed, text after a closing quote) and over-long fields raise DataError naming the
    file and line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        limit = csv.field_size_limit(FIELD_LIMIT)   # a whole article or book in one field
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(_csv_problem(path, start, reader.line_num, str(e))) from None
        finally:
            csv.field_size_limit(limit)             # the process's own setting again
        yield start, row


FIELD_LIMIT = 64 * 2 ** 20   # characters a CSV field may hold (Python's default: 131,072)


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
        return f"{path}:{start}: a field longer than {FIELD_LIMIT:,} characters{spans}"
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
        # the fewer than B predictions the rows leave: the last row's continuation, (1, r)
        self.tail = (ids[batch * per_row:-1][None], ids[batch * per_row + 1:][None])

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
        """The predictions a pass over the rows makes (an evaluation adds the tail's)."""
        return self.x.numel()

    @property
    def tokens(self):
        """Every prediction of the token sequence: the rows' and the tail's."""
        return self.x.numel() + self.tail[1].numel()
