"""Sequence pairs: a TSV reader, the fixed held-out split, vocabularies with special tokens, and
padded batches for the encoder-decoder and the conditional generator.

A pair file is UTF-8 text, one ``source<TAB>target`` pair a line (blank lines skipped): German and
English sentences for seq2seq, a label and a name for the 1→N generator. Also the builder that
turns the Ding dictionary (Debian ``trans-de-en``) into such a file.
Shapes: N pairs, B batch, S source length, T target length.
"""
import zlib
from collections import Counter

import numpy as np
import torch

from rnnkit.data.text import DataError, numbered_lines, read_text
from rnnkit.data.vocab import Vocab, tokenize

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = [PAD, BOS, EOS, UNK]        # ids 0, 1, 2, 3 in every pair vocabulary
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)


def read_pairs(path):
    """[(source, target), ...] from a TSV file; a line without exactly one tab, or with an empty
    side, raises DataError naming the line, and so does a file without pairs."""
    return [(s, t) for _, s, t in read_numbered_pairs(path)]


def read_numbered_pairs(path):
    """[(line number, source, target), ...] from a TSV file, for messages that name the line."""
    pairs = []
    for n, line in numbered_lines(read_text(path)):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            hint = (f"; more columns (an attribution, as in Tatoeba's files)? keep the two: "
                    f"cut -f1,2 {path}" if len(parts) > 2 else "")
            raise DataError(f"{path}:{n}: expected 'source<TAB>target' (one tab), got "
                            f"{len(parts) - 1} tabs: {line[:80]!r}{hint}")
        if not parts[0].strip() or not parts[1].strip():
            side = "source" if not parts[0].strip() else "target"
            raise DataError(f"{path}:{n}: expected 'source<TAB>target' with both sides non-empty, "
                            f"got an empty {side}: {line[:80]!r}")
        pairs.append((n, parts[0].strip(), parts[1].strip()))
    if not pairs:
        raise DataError(f"{path}: no 'source<TAB>target' pairs (only blank lines)")
    return pairs


def feature_rows(sources, path, lines):
    """Feature vectors (N, F) float32 when every source is a list of numbers of one length
    (``0.1,0.5 -2``: commas or spaces between them), else None (the sources are labels).
    ``lines`` are the sources' line numbers in ``path``: numbers not finite in float32 (nan,
    inf, or beyond ±3.4e38) and rows of another length raise DataError naming file and line."""
    try:
        rows = [[float(v) for v in s.replace(",", " ").split()] for s in sources]
    except ValueError:
        return None
    if not rows or not all(rows):
        return None                                   # "," is a label, not a vector of none
    lengths = [len(r) for r in rows]
    for i, n in enumerate(lengths):
        if n != lengths[0]:
            raise DataError(f"{path}:{lines[i]}: a feature vector of {n} numbers, expected "
                            f"{lengths[0]} like line {lines[0]}")
    with np.errstate(over="ignore"):
        values = np.array(rows, dtype=np.float64).astype(np.float32)           # (N, F)
    bad = np.nonzero(~np.isfinite(values).all(1))[0]
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{path}:{lines[i]}: feature vector {sources[i][:80]!r} holds a number "
                        f"that is not finite as float32 (nan, inf, or beyond ±3.4e38); "
                        f"{len(bad)} such line(s) in all")
    return values


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
            raise DataError(f"{path or 'the data'}: {len(pairs)} pairs are too few: none falls in "
                            f"the {name} split (about {pct}% of the pairs, chosen by a hash)"
                            + (f"; give more pairs or a --{name}-data file" if name != "train" else ""))
    return out


def own_splits(pairs, val_data="", test_data="", key=lambda p: p[0], path=""):
    """The train/val/test parts: cut from ``pairs`` by :func:`split_pairs`, except that a
    validation or test file, when given, is that part (read by :func:`read_pairs`) and the
    part is not cut from ``pairs``. Errors name ``path``, the file of ``pairs``."""
    splits = split_pairs(pairs, key, test_pct=0 if test_data else 5, val_pct=0 if val_data else 3,
                         path=path)
    if val_data:
        splits["val"] = read_pairs(val_data)
    if test_data:
        splits["test"] = read_pairs(test_data)
    return splits


def build_vocab(texts, kind="char", max_size=0):
    """A Vocab over ``texts`` with <pad> <s> </s> <unk> first, then tokens by frequency;
    ``max_size`` > 0 keeps that many in all (the rest become <unk>)."""
    counts = Counter(t for s in texts for t in tokenize(s, kind))
    tokens = [t for t, _ in counts.most_common() if t not in SPECIALS]
    if max_size:
        tokens = tokens[:max(0, max_size - len(SPECIALS))]
    return Vocab(SPECIALS + tokens, kind)


def unknown_tokens(vocab, text):
    """The tokens of ``text`` the vocabulary lacks (they would become <unk>), in order, unique."""
    return list(dict.fromkeys(t for t in tokenize(text, vocab.kind) if t not in vocab.stoi))


def encode(vocab, text, bos=False, eos=False):
    """text -> list of ids, unknown tokens as <unk>, optionally wrapped in <s> ... </s>."""
    ids = [vocab.stoi.get(t, UNK_ID) for t in tokenize(text, vocab.kind)]
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


def ding_pairs(files):
    """Builder for the ``de-en`` data set: the Ding dictionary's aligned sub-entries
    (``German :: English``, senses split by `` | ``), kept where both sides hold one sense (no
    ``;``) and the English side is a sentence (at least 4 words, ends in . ? or !). TSV bytes."""
    lines = []
    for f in sorted(files):
        for line in open(f, encoding="utf-8"):
            if line.startswith("#") or " :: " not in line:
                continue
            de, en = line.rstrip("\n").split(" :: ", 1)
            des, ens = de.split(" | "), en.split(" | ")
            if len(des) != len(ens):
                continue
            for d, e in zip(des, ens):
                d, e = d.strip(), e.strip()
                if ";" in d or ";" in e or "\t" in d + e:
                    continue
                if len(e.split()) >= 4 and e.endswith((".", "?", "!")):
                    lines.append(f"{d}\t{e}\n")
    return "".join(lines).encode("utf-8")


def cmudict_pairs(files):
    """Builder for the ``cmudict`` data set (grapheme to phoneme): ``word<TAB>phonemes`` lines from
    the CMU Pronouncing Dictionary (``word P1 P2 ...``, ARPAbet with stress digits), the first
    pronunciation of each word (variants ``word(2)`` dropped, ``# comments`` cut). TSV bytes."""
    lines = []
    for f in sorted(files):
        for line in open(f, encoding="utf-8"):
            entry = line.split("#", 1)[0].split()
            if len(entry) < 2 or "(" in entry[0]:
                continue
            lines.append(f"{entry[0]}\t{' '.join(entry[1:])}\n")
    return "".join(lines).encode("utf-8")
