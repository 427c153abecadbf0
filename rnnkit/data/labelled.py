"""Labelled text for N-to-1 classification: TSV/CSV/JSON-lines readers and a fixed three-way
split (the named sets' builders: :mod:`rnnkit.data.labelled_sets`).

A file holds one example a line, ``label<TAB>text`` (``.tsv``, ``.txt``), ``label,text``
(``.csv``, quoted as the csv module writes), a JSON object with a text and a label field
(``.jsonl``, ``.json``, as a datasets library writes it) or fastText's ``__label__pos text``; a
folder of class folders holds a text a file (:func:`folder_rows`). A first line naming the two
columns is a header and is skipped: ``label<sep>text`` (or another of :data:`LABEL_NAMES` and :data:`TEXT_NAMES`), or
``text<sep>label``, which says every row holds the text first and the label last (in a ``.csv``
such a header separated by semicolons, as a spreadsheet exports it, makes them the separator); a
header may name more columns (an id, a source: left out of every row), and an unnamed first
column (the row index pandas' ``to_csv`` writes) is left out too. Malformed rows and empty texts
raise DataError naming the file and line.

The tokens of a text: :mod:`rnnkit.data.text_tokens`.
"""
import random
import re
import warnings
from pathlib import Path

from rnnkit.data.text import (DataError, blank, clip, csv_records, excel_sep, first_line,
                              json_lines, numbered_lines, read_text, tab_quoted)
from rnnkit.data.text_tokens import words

# a first line naming its columns with these is a header (in either order)
LABEL_ORDER = ("label", "labels", "class", "category", "sentiment", "polarity", "target",
               "class index", "class_index", "stars", "rating", "overall", "intent", "topic",
               "emotion")                       # the likeliest first, where a header names two
LABEL_NAMES = set(LABEL_ORDER)
TEXT_NAMES = {"text", "sentence", "review", "content", "document", "comment", "tweet",
              "reviewtext", "review_text", "review text", "body", "message", "headline", "title",
              "description",
              "summary", "utterance", "question", "abstract", "article"}
FASTTEXT = "__label__"


def read_labelled(path, with_lines=False, least=2, classes=None):
    """[(label, text), ...] from a TSV or CSV file of label and text; with_lines: [(label, text,
    line number), ...]. The line number is where the example starts (a quoted CSV field may span
    lines). Fewer than ``least`` examples (2 to train on; a file to score may hold 1) raise
    DataError. ``classes``: only the examples of these labels (a folder: only these class
    folders are read)."""
    path = Path(path)
    if classes:
        rows = [r for r in read_labelled(path, True, 1) if r[0] in classes] if not path.is_dir() \
            else folder_rows(path, classes)
        if len(rows) < least:
            raise DataError(f"{path}: expected at least {least} labelled example"
                            f"{'s' * (least > 1)} of the classes {sorted(classes)}, "
                            f"got {len(rows)}")
        return rows if with_lines else [(label, body) for label, body, _ in rows]
    if path.is_dir():
        rows = folder_rows(path)
        return rows if with_lines else [(label, body) for label, body, _ in rows]
    hint, text = excel_sep(read_text(path))
    suffix = table_suffix(path)
    if suffix in (".jsonl", ".json") or text.lstrip().startswith("{"):
        rows = json_rows(text, path)
        if len(rows) < least:
            raise DataError(f"{path}: expected at least {least} labelled example"
                            f"{'s' * (least > 1)}, got {len(rows)}")
        return rows if with_lines else [(label, body) for label, body, _ in rows]
    sep = hint or ("," if suffix == ".csv" else "\t")
    head = first_line(text)
    if not hint and sep == "," and "," not in head and ";" in head:   # a spreadsheet's export
        names = [n.strip().strip('"').strip().lower() for n in head.split(";")]
        if len(names) >= 2 and set(names) & (LABEL_NAMES | TEXT_NAMES):
            sep = ";"
    if head.lstrip().startswith(FASTTEXT):
        rows = fasttext_rows(text, path)
        return rows if with_lines else [(label, body) for label, body, _ in rows]
    rows = csv_records(text, path, sep) if sep != "\t" or tab_quoted(text) else \
        ((n, line.split("\t")) for n, line in numbered_lines(text))
    rows = [(n, r) for n, r in rows if r and not (len(r) == 1 and blank(r[0]))]   # no blanks
    rows = _without_empty_tail(rows) if sep != "\t" else rows
    rows = [(n, r) for n, r in rows if not all(map(blank, r))]   # ",,": a row of nothing
    out, first, columns, widths, raw, heads = [], True, None, set(), [], []
    for lineno, row in rows:
        if first:                                      # a header: the first record only
            first = False
            columns = header_columns(row)
            head_row = [f.strip().lower() for f in row]
            if columns:
                width = len(row)
                continue
        elif (columns and [f.strip().lower() for f in row] == head_row) or header_columns(row):
            heads.append(lineno)                       # files joined with their headers
            continue
        while sep != "\t" and len(row) > (width if columns else 2) and not row[-1].strip():
            row = row[:-1]              # a spreadsheet's empty columns past the table's width
        widths.add(len(row))
        if not columns and len(raw) < 200:
            raw.append((lineno, row))
        if columns and width > 2:
            if len(row) != width:
                raise DataError(f"{path}:{lineno}: expected {width} fields like the header, got "
                                f"{len(row)}: {clip(sep.join(row), 60)!r}")
            label = row[columns[0]].strip()
            body = " ".join(row[j].strip() for j in columns[1] if row[j].strip())
        elif len(row) < 2:
            raise DataError(f"{path}:{lineno}: expected 'label{_show(sep)}text', got "
                            f"1 field: {clip(row[0], 60)!r}")
        elif columns and columns[0] == 1:              # "text,label": the label last
            label, body = row[-1].strip(), sep.join(row[:-1]).strip()
        else:
            label, body = row[0].strip(), sep.join(row[1:]).strip()
        if blank(label):
            raise DataError(f"{path}:{lineno}: empty label (text {clip(body, 60)!r})")
        if blank(body) or not words(body):
            raise DataError(f"{path}:{lineno}: empty text for label {label!r}")
        out.append((label, body, lineno) if with_lines else (label, body))
    if len(out) < least:
        raise DataError(f"{path}: expected at least {least} labelled example"
                        f"{'s' * (least > 1)}, got {len(out)}"
                        + (" (only a header)" if not out and columns else ""))
    if not columns:
        _unknown_header(path, out, raw)
    if heads:
        warnings.warn(f"{path}:{heads[0]}: {len(heads)} more header line(s) left out (the "
                      f"first line's names again: files joined with their headers?)",
                      stacklevel=2)
    ids = [j for j in range(1, min(widths)) if _id_column(raw, j)] if len(widths) == 1 else []
    if not columns and min(widths) >= 3 and ids:       # Sentiment140: label, id, date, ..., text
        raise DataError(f"{path}:{raw[0][0]}: every row has {min(widths)} fields, column "
                        f"{ids[0] + 1} of numbers (an id?) among them, and no first line names "
                        f"the label and the text; add one (e.g. 'label{sep}id{sep}...{sep}text': "
                        f"{', '.join(sorted(LABEL_NAMES)[:4])}, ... name a label, "
                        f"{', '.join(sorted(TEXT_NAMES)[:4])}, ... a text), or keep two columns")
    return out


_NAME = re.compile(r"[^\W\d]\w*(?:[ .-]\w+){0,2}")     # a column name: Score, tweet_text, Review Body


def _unknown_header(path, examples, raw):
    """DataError where the first row reads as a header under names rnnkit does not know
    (``Score,Text``): its label and its text each a name of a word or three, not a number, and
    its label found in no other row of ten or more. Read as an example it would be a class of
    its own, learned and predicted without a word."""
    label, body = examples[0][0], examples[0][1]
    if (len(examples) < 10 or not _NAME.fullmatch(label) or not _NAME.fullmatch(body)
            or any(e[0] == label and e[1] != body for e in examples[1:])):   # (a copy of the
        return                                                  # header: files joined)
    line = raw[0][0] if raw else 1
    raise DataError(f"{path}:{line}: the first row ({label!r}, {body!r}) looks like a header "
                    f"naming the columns (its label is in no other row), under names rnnkit does "
                    f"not read as one; name the columns label and text (or "
                    f"{', '.join(sorted(LABEL_NAMES)[:3])}, ... and "
                    f"{', '.join(sorted(TEXT_NAMES)[:3])}, ...), or remove the line if it is "
                    f"data")


def table_suffix(path):
    """A file's suffix as its format says it, lower case: ``.csv`` of ``reviews.csv.gz`` too
    (read_text reads it decompressed; its .gz said tab-separated)."""
    path = Path(path)
    return (Path(path.stem).suffix if path.suffix.lower() == ".gz" else path.suffix).lower()


def _without_empty_tail(rows):
    """CSV records with the empty fields that end every one of them left out: a spreadsheet's
    export of unused columns (``v1,v2,,,``), which were joined into every text."""
    def tail(r):
        return next((k for k in range(len(r)) if r[len(r) - 1 - k].strip()), len(r))
    k = min((tail(r) for _, r in rows), default=0)
    return [(n, r[:len(r) - k]) for n, r in rows] if k else rows


def _id_column(rows, j):
    """Whether column ``j`` of ``rows`` holds whole numbers of 3 digits or more (an id, a
    timestamp): no text to join into the text."""
    return all(len(r) > j and r[j].strip().isdigit() and len(r[j].strip()) >= 3 for _, r in rows)


def header_columns(row):
    """(label column, [text columns]) where ``row`` names its columns: one of
    :data:`LABEL_NAMES` and one or more of :data:`TEXT_NAMES` (a title and a description are
    read as one text; any others, an id or a source, are left out of every row; an unnamed
    first one is pandas' row index); else None."""
    names = [n.strip().lower() for n in row]
    labels = [j for j, n in enumerate(names) if n in LABEL_NAMES]
    texts = [j for j, n in enumerate(names) if n in TEXT_NAMES]
    if len(labels) > 1 and len(row) > 2:                 # text,label,emotion: the likeliest
        labels = [min(labels, key=lambda j: LABEL_ORDER.index(names[j]))]
    if len(labels) == 1 and texts and (len(row) > 2 or len(texts) == 1):
        return labels[0], texts
    return None


def fasttext_rows(text, path):
    """[(label, text, line number), ...] from fastText's format, ``__label__pos some text`` a
    line; a line with no label or with several (multi-label) raises DataError."""
    out = []
    for lineno, line in numbered_lines(text):
        tokens = line.split()
        if not tokens or blank(line):
            continue
        tags = [t for t in tokens if t.startswith(FASTTEXT)]
        if not tokens[0].startswith(FASTTEXT) or len(tags) > 1:
            raise DataError(f"{path}:{lineno}: expected one '{FASTTEXT}LABEL' first, then the "
                            f"text, got {len(tags)} label(s): {clip(line, 60)!r}")
        label, body = tokens[0][len(FASTTEXT):], " ".join(tokens[1:])
        if not label or not words(body):
            raise DataError(f"{path}:{lineno}: an empty label or text: {clip(line, 60)!r}")
        out.append((label, body, lineno))
    return out


def folder_rows(folder, classes=None):
    """[(label, text, 1), ...] from a folder of class folders (``train/pos/*.txt``,
    ``train/neg/*.txt``, as scikit-learn's ``load_files`` reads them): each file of a subfolder
    is a text labelled by the subfolder's name. Hidden folders and files are passed over (and a
    macOS archive's ``__MACOSX``), and with ``classes`` (load_files' ``categories``) every
    folder not named there."""
    out = []
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and p.name != "__MACOSX" and (classes is None or p.name in classes))
    inner = [sorted(p.name for p in sub.iterdir() if p.is_dir() and not p.name.startswith("."))
             for sub in subs]
    if subs and all(inner):    # aclImdb/ itself: train/ and test/ are no classes
        raise DataError(f"{folder}: a folder of folders of folders ({subs[0].name}/ holds "
                        f"{', '.join(inner[0][:4])}{', ...' * (len(inner[0]) > 4)}); expected a "
                        f"folder of class folders, each of text files (give {subs[0]}?)")
    for sub in subs:
        for f in sorted(p for p in sub.iterdir() if p.is_file() and not p.name.startswith(".")):
            body = " ".join(read_text(f).split())
            if blank(body) or not words(body):
                raise DataError(f"{f}: an empty text for label {sub.name!r}")
            out.append((sub.name, body, 1))
    if len(out) < 2:
        raise DataError(f"{folder}: a folder; expected a folder of class folders holding one "
                        f"text per file (e.g. pos/1.txt, neg/2.txt), got {len(out)} such file(s)")
    return out


def json_rows(text, path):
    """[(label, text, line number), ...] from JSON lines, one object a line with a text field and
    a label field (the names of :data:`TEXT_NAMES` and :data:`LABEL_NAMES`, as a datasets
    library's ``to_json`` writes them; a number as label is read as its text)."""
    out = []
    for lineno, record in json_lines(numbered_lines(text), path):
        if not isinstance(record, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object with a text and a label, "
                            f"got {type(record).__name__}")
        keys = {k.strip().lower(): k for k in record}
        text_keys = [k for k in record if k.strip().lower() in TEXT_NAMES]
        label_key = next((keys[k] for k in LABEL_ORDER if k in keys), None)
        if not text_keys or label_key is None:
            raise DataError(f"{path}:{lineno}: expected a text field "
                            f"({', '.join(sorted(TEXT_NAMES))}) and a label field "
                            f"({', '.join(sorted(LABEL_NAMES))}); got {sorted(record)}")
        label = record[label_key]
        bodies = [record[k] for k in text_keys if record[k] is not None] or [None]
        body = next((b for b in bodies if not isinstance(b, str)), bodies[0])
        if not isinstance(body, str) or isinstance(label, (dict, list)) or label is None:
            raise DataError(f"{path}:{lineno}: expected a text string and a label (a string or a "
                            f"number), got {type(body).__name__} and {type(label).__name__}")
        label, body = str(label).strip(), " ".join(b.strip() for b in bodies if b.strip())
        if blank(label):
            raise DataError(f"{path}:{lineno}: empty label (text {clip(body, 60)!r})")
        if blank(body) or not words(body):
            raise DataError(f"{path}:{lineno}: empty text for label {label!r}")
        out.append((label, body, lineno))
    return out


def own_parts(examples, data_config, read=None):
    """(train, val, test): the seeded split of ``examples``, except that a validation or test
    file given in ``data_config.val_data`` / ``test_data`` is that part (read by ``read``, which
    names its own file and lines in errors) and nothing is cut from ``examples`` for it."""
    read = read or read_labelled
    d = data_config
    val = read(d.val_data) if d.val_data else None
    test = read(d.test_data) if d.test_data else None
    order = list(range(len(examples)))
    random.Random(d.split_seed).shuffle(order)
    n_test = 0 if test is not None else max(1, round(len(examples) * d.test_fraction))
    n_val = 0 if val is not None else max(1, round(len(examples) * d.val_fraction))
    if len(examples) - n_test - n_val < 1:
        raise DataError(f"{d.data}: {_examples(len(examples))} too few for a train/validation/"
                        f"test split ({n_test} test, {n_val} validation, none left to train on)")
    pick = lambda idx: [examples[i] for i in idx]
    return (pick(order[n_test + n_val:]),
            val if val is not None else pick(order[n_test:n_test + n_val]),
            test if test is not None else pick(order[:n_test]))


def split_examples(examples, test_fraction=0.1, val_fraction=0.1, seed=0):
    """(train, val, test): a shuffle with a fixed seed, so the held-out test set never changes."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_test = max(1, round(len(examples) * test_fraction))
    n_val = max(1, round(len(examples) * val_fraction))
    if len(examples) - n_test - n_val < 1:
        raise DataError(f"{_examples(len(examples))} too few for a train/validation/test split")
    pick = lambda idx: [examples[i] for i in idx]
    return (pick(order[n_test + n_val:]), pick(order[n_test:n_test + n_val]), pick(order[:n_test]))


def _show(sep):
    return "<TAB>" if sep == "\t" else sep


def _examples(n):
    """"1 example is" or "N examples are", for a count's message."""
    return "1 example is" if n == 1 else f"{n:,} examples are"
