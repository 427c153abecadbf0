"""Builders of the named tagging sets: each turns a package's files (HKCanCor's CHAT files,
NLTK's Brown corpus, a CoNLL-2003 part) into the ``word/tag`` lines :func:`read_tagged` reads
(:mod:`rnnkit.data.datasets` names them)."""
from rnnkit.data.tagged import read_tagged
from rnnkit.data.text import DataError, numbered_lines, read_text


def _chat_utterances(path):
    """[(words, mor items), ...] of a CHAT file (CHILDES/TalkBank, as PyCantonese ships HKCanCor):
    each ``*SPK:<TAB>`` line's words and the items of the ``%mor:<TAB>`` tier after it (``[]``
    if none); any tier (``*``, ``%`` or ``@``) continues on the lines that begin with a tab.
    Other ``%`` tiers and ``@`` headers are passed over."""
    tiers = []                                        # [line number, tier name, text]
    for lineno, line in numbered_lines(read_text(path)):
        if line.startswith("\t"):
            if not tiers:
                raise DataError(f"{path}:{lineno}: a continuation line (tab first) before any "
                                f"CHAT tier")
            tiers[-1][2] += " " + line
        elif line[:1] in ("*", "%"):
            name, colon, text = line.partition(":")
            if not colon:
                raise DataError(f"{path}:{lineno}: expected '{name}:<TAB>...', got {line[:40]!r}")
            tiers.append([lineno, name, text])
        elif line[:1] == "@":
            tiers.append([lineno, line.partition(":")[0], ""])
        elif line.strip():
            raise DataError(f"{path}:{lineno}: expected a CHAT line (@header, *speaker: or "
                            f"%tier:), got {line[:40]!r}")
    utts = []
    for lineno, name, text in tiers:
        if name.startswith("*"):
            utts.append([text.split(), None])
        elif name == "%mor":
            if not utts or utts[-1][1] is not None:
                raise DataError(f"{path}:{lineno}: a %mor tier with no utterance (*SPK:) line "
                                f"before it")
            utts[-1][1] = text.split()
    return [(words, items or []) for words, items in utts]


def _hkcancor_sentences(files):
    """(words, tags) of every HKCanCor utterance, files in sorted order, and how many utterances
    were left out (empty, or their word and %mor item counts differ). A ``tag|jyutping`` item's
    tag is the part before the ``|``; an item without one is punctuation (``?`` ``.`` ``,`` ``-``
    ``"`` ``!`` ``...``) and tagged ``w``, as People's Daily tags punctuation."""
    sents, skipped = [], 0
    for f in sorted(files):
        for words, items in _chat_utterances(f):
            if not words or len(words) != len(items):
                skipped += 1
                continue
            tags = [item.partition("|")[0] if "|" in item else "w" for item in items]
            for word, tag in zip(words, tags):
                if not tag or "/" in tag:
                    raise DataError(f"{f}: word {word!r} has the tag {tag!r}; expected a tag "
                                    f"with no '/' (the word/tag separator)")
            sents.append((words, tags))
    return sents, skipped


def hkcancor_pos(files):
    """PyCantonese's HKCanCor (the Hong Kong Cantonese Corpus: 58 CHAT ``.cha`` files of
    conversation and radio, hand-segmented, each word tagged ``tag|jyutping`` on the ``%mor``
    tier) -> one utterance a line, ``word/tag`` items separated by two spaces as in People's
    Daily (``pd1998-pos``); punctuation tagged ``w``. Tags as the corpus gives them (``v``,
    ``v1``, ``vu``, ``Ng``, ``xn`` for English words, ``#`` for the ``○`` placeholder, ...)."""
    sents, _ = _hkcancor_sentences(files)
    return "".join("  ".join(f"{w}/{t}" for w, t in zip(words, tags)) + "\n"
                   for words, tags in sents).encode("utf-8")


def _bmes(word):
    if len(word) == 1:
        return [f"{word}/s"]
    return [f"{word[0]}/b", *(f"{c}/m" for c in word[1:-1]), f"{word[-1]}/e"]


def hkcancor_seg(files):
    """The utterances of :func:`hkcancor_pos` as a word segmentation in ``pd1998-seg``'s format:
    each character of a word tagged ``b``, ``m``, ``e`` (first, middle, last of a longer word) or
    ``s`` (a one-character word), separated by single spaces, one utterance a line. As People's
    Daily does, every character is a token whatever its script: English words (``call`` ->
    ``c/b a/m l/m l/e``), letters and digits, and ``...`` (``./b ./m ./e``, as ``……``)."""
    sents, _ = _hkcancor_sentences(files)
    return "".join(" ".join(t for w in words for t in _bmes(w)) + "\n"
                   for words, _tags in sents).encode("utf-8")


def brown_pos(files):
    """The Brown corpus's 500 text files (``ca01`` ... ``cr09``: one sentence a line of ``word/tag``
    tokens, a paragraph's first line tab-indented, blank lines between) -> one sentence a line,
    ``word/tag`` tokens separated by single spaces, files in sorted order. Tags as the corpus
    gives them (lower case, with ``-tl``, ``-hl``, ``-nc``, ``*``, ``$`` and ``+`` forms);
    words may hold a ``/`` (``1/2/cd``, ``and/or/cc``): the tag is after the last one."""
    out = []
    for f in sorted(files):
        for lineno, line in numbered_lines(read_text(f)):
            tokens = line.split()
            for tok in tokens:
                word, slash, tag = tok.rpartition("/")
                if not slash or not word or not tag:
                    raise DataError(f"{f}:{lineno}: expected 'word/tag', got {tok!r}")
            if tokens:
                out.append(" ".join(tokens) + "\n")
    return "".join(out).encode("utf-8")


def conll2003_tagged(column):
    """Builder of a CoNLL-2003 part (its one column file: word, POS, chunk, named entity) ->
    ``word/tag`` lines of the tags in ``column`` (1: POS), one sentence a line, documents'
    ``-DOCSTART-`` lines left out."""
    def build(files):
        (path,) = files
        sents = read_tagged(path, column)
        return "".join(" ".join(f"{w}/{t}" for w, t in zip(words, tags)) + "\n"
                       for words, tags in sents).encode("utf-8")
    build.__name__ = f"conll2003_column{column}"
    return build
