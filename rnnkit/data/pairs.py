"""Sequence pairs: a TSV reader, the fixed held-out split, vocabularies with special tokens, and
padded batches for the encoder-decoder and the conditional generator.

A pair file is UTF-8 text, one ``source<TAB>target`` pair a line (blank lines skipped; also CSV
and JSON lines, a header and Tatoeba's layouts: :func:`read_numbered_pairs`): German and English
sentences for seq2seq, a label and a name for the 1→N generator (the named sets' builders:
:mod:`rnnkit.data.pair_sets`).
Shapes: N pairs, B batch, S source length, T target length.
"""
import json
import re
import zlib
from collections import Counter
from pathlib import Path

import torch

from rnnkit.data.text import (DataError, blank, csv_records, excel_sep, first_line, json_lines,
                              numbered_lines, read_text, tab_quoted)
from rnnkit.data.vocab import WORD_FORM, Vocab, tokenize

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = [PAD, BOS, EOS, UNK]        # ids 0, 1, 2, 3 in every pair vocabulary
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)

# A first line whose two fields are both such names (in any case) is a header, skipped.
HEADER_NAMES = {
    "source", "src", "target", "tgt", "input", "output", "question", "answer", "prompt", "query",
    "response", "completion", "reply", "translation", "reference", "text", "sentence", "label",
    "class", "category", "condition", "country", "language", "nationality", "gender", "genre",
    "topic", "emotion", "author", "features", "feature", "x", "y", "name", "names", "sequence",
    "word", "words", "grapheme", "graphemes", "spelling", "phoneme", "phonemes", "pronunciation",
    "transliteration"}
# words that join a header name ("src_text", "en_sentences", "target lang")
HEADER_PARTS = {"lang", "seq", "str", "string", "sent", "sents", "sentences", "tok", "toks",
                "tokens", "raw", "clean", "side", "col", "column", "field"}
LANGUAGE_NAMES = set(
    "english german french spanish italian portuguese dutch russian chinese mandarin cantonese "
    "japanese korean arabic hindi turkish polish swedish finnish danish norwegian greek hebrew "
    "vietnamese thai indonesian czech hungarian romanian ukrainian persian urdu bengali latin "
    "esperanto catalan basque welsh irish tamil telugu swahili".split())
# ISO 639-1 codes and common ISO 639-3 ones: a header such as ``de<TAB>en`` or ``en-US<TAB>fr``.
LANGUAGE_CODES = set(
    "aa ab af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy "
    "da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht "
    "hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky "
    "la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny "
    "oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss "
    "st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo "
    "za zh zu ara ben ces cmn dan deu ell eng epo fas fin fra heb hin hun ind ita jpn kor lat "
    "nld nob pol por ron rus spa swe tha tur ukr urd vie yue zho".split())
_LANG_TAG = re.compile(r"([a-z]{2,3})(?:[-_][a-z0-9]{2,8})*")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBERS = re.compile(rf"{_NUMBER}(?:[ ,]+{_NUMBER})*")
# JSON fields read as the source and the target, the first present of each
JSON_SOURCE = ("source", "src", "input", "question", "prompt", "label", "condition", "document",
               "article")
JSON_TARGET = ("target", "tgt", "output", "answer", "response", "completion", "name", "text",
               "sequence", "summary", "highlights")
ID_FIELDS = {"id", "_id", "idx", "index", "uid"}        # a record's number, no text of the pair


SIDES = ("source", "target")   # what a pair's two sides are called in messages


def read_pairs(path, sides=SIDES):
    """[(source, target), ...] from a pair file (see :func:`read_numbered_pairs`); a line without
    two fields, or with an empty side, raises DataError naming the line, and so does a file
    without pairs."""
    return [(s, t) for _, s, t in read_numbered_pairs(path, sides)]


def read_numbered_pairs(path, sides=SIDES):
    """[(line number, source, target), ...] from a pair file, for messages that name the line
    (and the two ``sides`` as the task calls them: cond's label and sequence).

    ``source<TAB>target`` lines (fields quoted as the csv module writes them are unquoted where
    the file quotes so: :func:`rnnkit.data.text.tab_quoted`; R's, pandas' and spreadsheets'
    exports), ``.csv``
    rows of two fields, or JSON lines (``.jsonl``, or a file starting with ``{``): a
    ``{"translation": {"de": ..., "en": ...}}`` object (the first language is the source), or
    an object with a source and a target field (:data:`JSON_SOURCE`, :data:`JSON_TARGET`; an
    Alpaca record's instruction and input are the source), or with two text fields, in order
    (an id field left out). A first line naming the columns is a header and is skipped
    (two of :data:`HEADER_NAMES`, two language codes such as ``de<TAB>en``, or a name over a
    column of numbers); a header whose first name is empty (pandas' row index) leaves that column
    out of every row. Tatoeba's layouts are read as their two sentences: ``id<TAB>text<TAB>id
    <TAB>text`` and ``text<TAB>text<TAB>CC-BY ... attribution``."""
    text = read_text(path)
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".json") or _json_first_line(text):
        rows = _json_pairs(text, path, sides)
        fmt = f"a JSON {sides[0]} and {sides[1]}"
    else:
        hint, text = excel_sep(text)
        sep = hint or ("," if suffix == ".csv" else "\t")
        head = first_line(text)
        if sep == "," and "," not in head and len(head.split(";")) == 2 and all(
                n.strip().strip('"').lower() in HEADER_NAMES for n in head.split(";")):
            sep = ";"                           # a spreadsheet's export, by its header
        quoted = sep != "\t" or tab_quoted(text)
        rows = (csv_records(text, path, sep) if quoted
                else ((n, line.split("\t")) for n, line in numbered_lines(text)))
        rows = _known_layout([(n, r) for n, r in rows if r and not blank("".join(r))])
        fmt = f"'{sides[0]}{'<TAB>' if sep == chr(9) else sep}{sides[1]}'"
        rows = [(n, trimmed(parts)) for n, parts in rows]   # a spreadsheet's empty last fields
        for n, parts in rows:
            if len(parts) != 2:
                hint = (f"; more columns (an attribution, as in Tatoeba's files)? keep the two: "
                        f"cut -f1,2 {path}" if len(parts) > 2 and sep == "\t" else
                        f"; a sentence a line, the translations in a second file (Europarl, "
                        f"Moses)? join them: paste {path} OTHER > pairs.tsv"
                        if len(parts) == 1 and sep == "\t" and all(len(r) == 1 for _, r in rows)
                        else "") if sides == SIDES else ""   # (translations' file layouts)
                want, got = (("one tab", f"{len(parts) - 1} tabs") if sep == "\t" else
                             ("two fields", f"{len(parts)} fields"))
                raise DataError(f"{path}:{n}: expected {fmt} ({want}), got {got}: "
                                f"{_shown(parts, sep)!r}{hint}")
    pairs = []
    for n, (source, target) in rows:
        if blank(source) or blank(target):
            side = sides[0] if blank(source) else sides[1]
            raise DataError(f"{path}:{n}: expected {fmt} with both sides non-empty, got an empty "
                            f"{side}: {_shown((source, target), chr(9))!r}")
        pairs.append((n, source.strip(), target.strip()))
    if not pairs:
        raise DataError(f"{path}: no {fmt.removeprefix('a ')} pairs (only blank lines or a "
                        f"header)")
    return pairs


def _shown(parts, sep):
    return sep.join(parts)[:80]


def _name(field):
    return field.strip().lower()


def _header_field(name):
    """Whether a (lower-cased) field names a column: one of :data:`HEADER_NAMES`, or such names,
    language names and :data:`HEADER_PARTS` joined by _ - . or spaces ("src_text", "target
    sentence", "english_sentences"). A language's name alone is not one: "English<TAB>French"
    may be a pair (a nationality and a name, a word and its category)."""
    if name in HEADER_NAMES:
        return True
    parts = [p for p in re.split(r"[_\-. ]+", name) if p]
    return 1 < len(parts) <= 3 and all(p in HEADER_NAMES or p in LANGUAGE_NAMES or
                                       p in HEADER_PARTS for p in parts) and \
        any(p in HEADER_NAMES or p in HEADER_PARTS for p in parts)


def _is_header(row, rest):
    """Whether the first row of a pair file names its columns: both fields header names, two
    language codes, or a first field that is not a list of numbers over a column of them."""
    a, b = (_name(f) for f in row)
    if a == b:                                  # "Name<TAB>name": a dictionary's entry
        return False
    if _header_field(a) and _header_field(b):
        return True
    codes = [m.group(1) if (m := _LANG_TAG.fullmatch(x)) else "" for x in (a, b)]
    if all(c in LANGUAGE_CODES for c in codes) and a != b:
        return True
    return (len(rest) >= 2 and not _NUMBERS.fullmatch(row[0].strip())
            and all(len(r) == 2 and _NUMBERS.fullmatch(r[0].strip()) for _, r in rest))


def _known_layout(rows):
    """The rows as (line, [source, target]) where the file is one of the layouts named in
    :func:`read_numbered_pairs`; other rows as they are (the caller checks their length)."""
    if not rows:
        return rows
    if all(len(r) == 4 and r[0].strip().isdigit() and r[2].strip().isdigit() for _, r in rows):
        return [(n, [r[1], r[3]]) for n, r in rows]                      # Tatoeba's pairs
    if all(len(r) == 3 and r[2].strip().startswith("CC-BY") for _, r in rows):
        return [(n, r[:2]) for n, r in rows]                             # its Anki exports
    head, rest = rows[0][1], rows[1:]
    if (len(head) == 3 and _name(head[0]) in ("", "unnamed: 0", "index", "id")
            and all(len(r) == 3 and r[0].strip().isdigit() for _, r in rest)):
        rows = [(n, r[1:]) for n, r in rows]                             # a row index first
        head, rest = rows[0][1], rows[1:]
    if len(head) == 2 and _is_header(head, rest):
        return rest
    return rows


def _json_first_line(text):
    """Whether the first non-blank line of ``text`` is a JSON object (a TSV whose source starts
    with ``{``, as data-to-text sets write, is not)."""
    line = first_line(text)
    try:
        return line.lstrip().startswith("{") and isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _json_pairs(text, path, sides=SIDES):
    """(line, [source, target]) from JSON lines (``sides``: what messages call them)."""
    rows, (first, second) = [], sides
    for n, record in json_lines(numbered_lines(text), path):
        at = f"{path}:{n}"
        if not isinstance(record, dict):
            raise DataError(f"{at}: expected a JSON object with a {first} and a {second}, got "
                            f"{type(record).__name__}")
        inner = record.get("translation")
        fields = inner if isinstance(inner, dict) else {
            k: v for k, v in record.items() if _name(k) not in ID_FIELDS}
        if "instruction" in fields and "output" in fields:          # Alpaca: the input joins it
            fields = {"source": " ".join(str(fields[k]) for k in ("instruction", "input")
                                         if fields.get(k)), "target": fields["output"]}
        keys = {_name(k): k for k in fields}
        source = next((keys[k] for k in JSON_SOURCE if k in keys), None)
        target = next((keys[k] for k in JSON_TARGET if k in keys and keys[k] != source), None)
        if source is None or target is None:
            texts = [k for k, v in fields.items() if isinstance(v, str)]
            if len(texts) != 2:
                pair = (", a \"translation\" object of two languages" if sides == SIDES
                        else "")   # (translation's files)
                raise DataError(f"{at}: expected a {first} and a {second} field ("
                                f"{', '.join(JSON_SOURCE)}; {', '.join(JSON_TARGET)}){pair} or "
                                f"an object of two texts; got {sorted(fields)}")
            source, target = texts
        values = [fields[source], fields[target]]
        if not all(isinstance(v, str) or (isinstance(v, (int, float)) and not isinstance(v, bool))
                   for v in values):
            raise DataError(f"{at}: expected texts in {source!r} and {target!r}, got "
                            f"{type(values[0]).__name__} and {type(values[1]).__name__}")
        rows.append((n, [str(v) for v in values]))
    return rows


def trimmed(parts):
    """A row's fields without empty ones after its second (trailing tabs or commas, as classify
    and forecast read them)."""
    while len(parts) > 2 and not parts[-1].strip():
        parts = parts[:-1]
    return parts


def split_of(key, test_pct=5, val_pct=3):
    """'test', 'val' or 'train' for a pair, fixed by the CRC-32 of ``key`` (the source text for
    translation, the name for names): stable across runs, machines and file order, and a
    repeated key always lands on the same side."""
    r = zlib.crc32(key.encode("utf-8")) % 100
    return "test" if r < test_pct else "val" if r < test_pct + val_pct else "train"


def split_pairs(pairs, key=lambda p: p[0], test_pct=5, val_pct=3, path=""):
    """{'train': [...], 'val': [...], 'test': [...]} by :func:`split_of`; an empty part (one
    that is asked for: its percentage > 0) raises DataError naming ``path``, the file the pairs
    come from."""
    out = {"train": [], "val": [], "test": []}
    for p in pairs:
        out[split_of(key(p), test_pct, val_pct)].append(p)
    for name, pct in (("train", 100 - test_pct - val_pct), ("val", val_pct), ("test", test_pct)):
        if pct and not out[name]:
            keys = len({key(p) for p in pairs})
            distinct = f" ({keys} distinct)" if keys < len(pairs) else ""
            many = f"{len(pairs):,} pairs are" if len(pairs) != 1 else "1 pair is"
            raise DataError(f"{path or 'the data'}: {many} too few{distinct}: "
                            f"none falls in the {name} "
                            f"split (about {pct}% of the distinct ones, chosen by a hash, a repeated "
                            f"one always on the same side)"
                            + (f"; give more pairs or a --{name}-data file" if name != "train" else ""))
    return out


def own_splits(pairs, val_data="", test_data="", key=lambda p: p[0], path="", sides=SIDES):
    """The train/val/test parts: cut from ``pairs`` by :func:`split_pairs`, except that a
    validation or test file, when given, is that part (read by :func:`read_pairs`, its
    messages naming the pair's ``sides``) and the part is not cut from ``pairs``. Errors name
    ``path``, the file of ``pairs``."""
    splits = split_pairs(pairs, key, test_pct=0 if test_data else 5, val_pct=0 if val_data else 3,
                         path=path)
    if val_data:
        splits["val"] = read_pairs(val_data, sides)
    if test_data:
        splits["test"] = read_pairs(test_data, sides)
    return splits


def build_vocab(texts, kind="char", max_size=0, stored=None):
    """A Vocab over ``texts`` with <pad> <s> </s> <unk> first, then tokens by frequency;
    ``max_size`` > 0 keeps that many in all (the rest become <unk>). ``stored``: the
    vocabulary a resumed run's checkpoint holds (its dict): the texts are split as its run split
    them, and a vocabulary that comes out otherwise is refused (ids would change meaning)."""
    form = WORD_FORM if stored is None else Vocab.from_dict(stored).form
    counts = Counter(t for s in texts for t in tokenize(s, kind, form))
    tokens = [t for t, _ in counts.most_common() if t not in SPECIALS]
    if max_size:
        tokens = tokens[:max(0, max_size - len(SPECIALS))]
    vocab = Vocab(SPECIALS + tokens, kind, form)
    if stored is not None and vocab != Vocab.from_dict(stored):
        raise DataError(f"--resume: the training pairs, read now, give another vocabulary of "
                        f"{kind} tokens than the one the run's weights were trained on ("
                        f"{len(vocab):,} tokens, the run's {len(stored['tokens']):,}; a run made "
                        f"by an older rnnkit?); start a new run with another --out")
    return vocab


def unknown_tokens(vocab, text):
    """The tokens of ``text`` the vocabulary lacks (they would become <unk>), in order, unique."""
    return list(dict.fromkeys(t for t in vocab.tokenize(text) if t not in vocab.stoi))


def encode(vocab, text, bos=False, eos=False):
    """text -> list of ids, unknown tokens as <unk>, optionally wrapped in <s> ... </s>."""
    ids = [vocab.stoi.get(t, UNK_ID) for t in vocab.tokenize(text)]
    return [BOS_ID] * bos + ids + [EOS_ID] * eos


def decode(vocab, ids):
    """ids -> text, stopping at </s> and dropping <pad> and <s>."""
    out = []
    for i in ids:
        i = int(i)
        if i == EOS_ID:
            break
        if i not in (PAD_ID, BOS_ID):
            out.append(vocab.itos[i])
    return "".join(out)


def pad(seqs):
    """List of id lists -> (padded (B, T) long tensor, lengths (B,))."""
    lengths = torch.tensor([len(s) for s in seqs])
    out = torch.full((len(seqs), int(lengths.max())), PAD_ID, dtype=torch.long)
    for b, s in enumerate(seqs):
        out[b, :len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out, lengths


class PairBatches:
    """Deterministic shuffled batches of encoded pairs (src ids, tgt ids): batch ``i`` depends on
    ``i`` and the seed only, so a resumed run continues with the right batch. Within each pass,
    chunks of 32 batches are sorted by length to keep padding small."""

    def __init__(self, examples, batch, seed=0):
        if not examples:
            raise DataError("no training pairs left (all empty or longer than the model's max_len)")
        from rnnkit.train import distributed   # a batch over the data is all of it each step
        distributed.check_capped_batch(batch, len(examples))
        self.examples, self.batch, self.seed = examples, batch, seed
        self.per_pass = max(1, len(examples) // batch)
        self._pass, self._order = None, None

    def __len__(self):
        return self.per_pass

    def __getitem__(self, i):
        p, i = divmod(i, self.per_pass)
        if p != self._pass:
            self._pass, self._order = p, self._plan(p)
        from rnnkit.train import distributed   # a data-parallel rank takes its share
        return [self.examples[j] for j in distributed.shard(self._order[i])]

    def _plan(self, p):
        g = torch.Generator().manual_seed(self.seed * 100003 + p)
        order = torch.randperm(len(self.examples), generator=g).tolist()
        chunk = self.batch * 32
        batches = []
        for k in range(0, self.per_pass * self.batch, chunk):
            part = sorted(order[k:min(k + chunk, self.per_pass * self.batch)],
                          key=lambda j: len(self.examples[j][1]))
            batches += [part[s:s + self.batch] for s in range(0, len(part), self.batch)]
        shuffle = torch.randperm(len(batches), generator=g).tolist()
        return [batches[s] for s in shuffle]
