"""Builders of the named pair data sets, as ``rnnkit data fetch`` makes them: the Ding
dictionary's sentence pairs (``de-en``) and the CMU Pronouncing Dictionary (``cmudict``), each
turned into ``source<TAB>target`` TSV bytes (:mod:`rnnkit.data.pairs` reads them)."""


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
