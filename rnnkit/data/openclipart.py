"""Openclipart's titled drawings (Debian ``openclipart-svg``, about 8,100 public-domain SVGs, each
with a human title and keywords) as an image-to-text set: ``rnnkit train image-to-text --data
openclipart``. Install the package and the renderer with ``make clipart-data``.

For each drawing under ``/usr/share/openclipart/svg``:

1. its ``cc:Work``'s ``dc:title`` and ``dc:subject`` keywords are read (``xml.etree``: no DTD or
   external entity is ever fetched; a file that does not parse is skipped and counted);
2. the title is normalised: an attribution prefix ("Clipart by NAME - ") removed, accents
   folded, lowercase ASCII letters and digits only, words joined by one space, cut at a word
   boundary to ``max_chars``; a title left empty, or with fewer than half of its letter words in
   an English word list (the CMU pronouncing dictionary, rnnkit's ``cmudict`` data set), is
   dropped (many titles are Italian or Spanish; the package's ``dc:language`` says "en" for them);
3. a byte-for-byte copy of a drawing already read (some are filed under two names) is dropped,
   so no drawing is in two parts; at most ``max_per_title`` drawings keep one title (in hash
   order): collection labels such as "gramastar" (1,375 star shapes) or "part of the flat icon
   collection" (about 950 icons) would otherwise be most of the set;
4. the part is fixed by a hash of the file's path: sha256 mod 100 < 80 train, < 90 validation,
   else test, so a drawing is in one part in every run and for every setting;
5. the drawing is rendered once with ``rsvg-convert`` (Debian ``librsvg2-bin``, at ``nice 10``),
   fitted into a ``size`` x ``size`` grey-level PNG on white, cached under
   ``$RNNKIT_DATA/openclipart/png-SIZE/`` by a hash of the SVG's bytes (written atomically);
   the first build rendered 3,330 drawings at 48 px in 13 minutes on a busy 2-core machine.

The parts are written as ``path<TAB>title`` TSVs (and ``meta.tsv`` with each drawing's keywords,
for word precision) in a folder keyed by the settings, and read by the recogniser's TSV path.
``python -m rnnkit.data.openclipart --size 48 [--limit N]`` builds them and prints the counts.
"""
import argparse
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from io import BytesIO
from pathlib import Path

from rnnkit.config import ConfigError
from rnnkit.data.text import DataError

ROOT = Path("/usr/share/openclipart/svg")
ALPHABET = " 0123456789abcdefghijklmnopqrstuvwxyz"
MAX_CHARS = 32          # longest title kept (cut at a word boundary)
MAX_PER_TITLE = 20      # drawings that may share one title
RENDER_TIMEOUT = 30     # seconds per drawing; a slower one is skipped
VERSION = 2             # of this builder: part of the cache key
PARTS = ("train", "val", "test")
DC = "{http://purl.org/dc/elements/1.1/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
TRAILING_NUMBER = re.compile(r"\b([a-z]{3,})([0-9]+)\b")
ATTRIBUTION = re.compile(r"^\s*clip\s*-?\s*art\s+by\s+[^-]*-\s*", re.I)


# ----------------------------------------------------------------- metadata and titles
def metadata(data, where):
    """SVG bytes -> (title, [keywords]) of its ``cc:Work`` ("" and [] where absent). A file that
    is not XML raises DataError naming ``where``."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise DataError(f"{where}: not a readable SVG ({e})") from None
    work = next((e for e in root.iter() if isinstance(e.tag, str) and e.tag.endswith("}Work")),
                None)
    if work is None:
        return "", []
    title = (work.findtext(f"{DC}title") or "").strip()
    subject = work.find(f"{DC}subject")
    keywords = [] if subject is None else [
        k for k in ((li.text or "").strip() for li in subject.iter(f"{RDF}li")) if k]
    if subject is not None and not keywords and (subject.text or "").strip():
        keywords = [w for w in re.split(r"[,;]", subject.text) if w.strip()]
    return title, keywords


def words_of(text):
    """Accents folded, lowercase ASCII letter/digit runs, a number ending a word split off:
    "Café_Noir-2" -> [cafe, noir, 2], "tiger03" -> [tiger, 03] ("mp3", "p2p" stay)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return TRAILING_NUMBER.sub(r"\1 \2", " ".join(re.findall(r"[a-z0-9]+", folded.lower()))).split()


def normalise(title, max_chars=MAX_CHARS):
    """A title as the model's target: attribution removed, words_of joined by spaces, cut at a
    word boundary to at most ``max_chars`` characters ("" when nothing is left)."""
    out = ""
    for w in words_of(ATTRIBUTION.sub("", title)):
        nxt = f"{out} {w}" if out else w
        if len(nxt) > max_chars:
            return out or w[:max_chars]
        out = nxt
    return out


def keyword_words(keywords):
    """The set of words of a drawing's keywords (``united_nations_member`` gives three)."""
    return {w for k in keywords for w in words_of(k)}


def english_looking(title, vocabulary):
    """True when at least half of the title's letter words (digits aside) are in ``vocabulary``."""
    letters = [w for w in title.split() if w.isalpha()]
    return bool(letters) and 2 * sum(w in vocabulary for w in letters) >= len(letters)


def english_words(log=print):
    """Lowercase words of the CMU pronouncing dictionary (rnnkit's ``cmudict`` data set)."""
    from rnnkit.data.datasets import fetch
    path = fetch("cmudict", log=log)
    with open(path, encoding="utf-8") as f:
        return {line.split("\t", 1)[0].split("(")[0].lower() for line in f}


def part_of(name):
    """The fixed part of a drawing, by a hash of its path: 80% train, 10% val, 10% test."""
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % 100
    return "train" if h < 80 else "val" if h < 90 else "test"


def hash_order(name):
    return hashlib.sha256(b"order:" + name.encode()).hexdigest()


def select(drawings, vocabulary, max_chars=MAX_CHARS, max_per_title=MAX_PER_TITLE, limit=0):
    """[(name, svg bytes)] -> the kept drawings [{name, title, keywords, part, svg}] in hash
    order, and the counts of what was dropped and why."""
    counts, per_title, kept, seen = Counter(), Counter(), [], set()
    for name, data in sorted(drawings, key=lambda d: hash_order(d[0])):
        digest = hashlib.sha256(data).digest()
        if digest in seen:              # the same file under another name: one drawing, one part
            counts["a copy of another"] += 1
            continue
        seen.add(digest)
        try:
            raw, keywords = metadata(data, name)
        except DataError:
            counts["unreadable"] += 1
            continue
        title = normalise(raw, max_chars)
        if not title:
            counts["no title"] += 1
        elif not english_looking(title, vocabulary):
            counts["not English-looking"] += 1
        elif per_title[title] >= max_per_title:
            counts[f"over {max_per_title} a title"] += 1
        else:
            per_title[title] += 1
            kept.append({"name": name, "title": title, "part": part_of(name), "svg": data,
                         "keywords": sorted(keyword_words(keywords))})
            if limit and len(kept) >= limit:
                break
    return kept, counts


# ----------------------------------------------------------------- rendering
def render(data, png, size):
    """SVG bytes -> a size x size grey PNG (the drawing fitted, centred on white), written
    atomically; False when rsvg-convert fails or takes over RENDER_TIMEOUT seconds."""
    from PIL import Image
    try:
        out = subprocess.run(["rsvg-convert", "-a", "-w", str(size), "-h", str(size), "-b",
                              "white", "-f", "png"], input=data, capture_output=True,
                             timeout=RENDER_TIMEOUT, preexec_fn=lambda: os.nice(10))
        if out.returncode != 0 or not out.stdout:
            return False
        with Image.open(BytesIO(out.stdout)) as im:
            im.load()
            grey = im.convert("L")
    except (subprocess.TimeoutExpired, OSError, ValueError):
        return False
    square = Image.new("L", (size, size), 255)
    square.paste(grey, ((size - grey.width) // 2, (size - grey.height) // 2))
    tmp = png.with_name(f".{png.name}.{os.getpid()}.tmp")
    square.save(tmp, format="PNG")
    os.replace(tmp, png)
    return True


def write_atomic(path, text):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build(cache, size=32, max_chars=MAX_CHARS, max_per_title=MAX_PER_TITLE, limit=0, root=None,
          vocabulary=None, log=print):
    """The folder holding train.tsv, val.tsv, test.tsv and meta.tsv for these settings, built
    (and every drawing rendered) unless already cached. ``root``: the SVGs (default ROOT);
    ``vocabulary``: the English words (default :func:`english_words`)."""
    cache, root = Path(cache), Path(root or ROOT)
    settings = {"size": size, "max_chars": max_chars, "max_per_title": max_per_title,
                "limit": limit, "root": str(root), "version": VERSION}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    folder = cache / f"{size}px-{key}"
    if (folder / "summary.json").is_file():
        return folder
    if not root.is_dir():
        raise DataError(f"openclipart: expected the drawings in {root}, found no such folder; "
                        f"install them with `make clipart-data` (Debian openclipart-svg)")
    if shutil.which("rsvg-convert") is None:
        raise DataError("openclipart: expected rsvg-convert to render the drawings, found none; "
                        "install it with `make clipart-data` (Debian librsvg2-bin)")
    start = time.time()
    files = sorted(root.rglob("*.svg"))
    drawings = [(str(p.relative_to(root)), p.read_bytes()) for p in files]
    kept, counts = select(drawings, vocabulary if vocabulary is not None else
                          english_words(log), max_chars, max_per_title, limit)
    log(f"openclipart: {len(files):,} drawings, {len(kept):,} kept; rendering the new ones at "
        f"{size}x{size} (rsvg-convert, nice 10)")
    pngs = cache / f"png-{size}"
    pngs.mkdir(parents=True, exist_ok=True)
    rows, rendered = [], 0
    for i, d in enumerate(kept, 1):
        png = pngs / f"{hashlib.sha256(d['svg']).hexdigest()[:24]}.png"
        if not png.is_file():
            if not render(d["svg"], png, size):
                counts["not renderable"] += 1
                continue
            rendered += 1
        rows.append((d, png))
        if i % 500 == 0:
            log(f"openclipart: {i:,}/{len(kept):,} drawings ({time.time() - start:.0f} s)")
    sizes = {part: sum(d["part"] == part for d, _ in rows) for part in PARTS}
    if not all(sizes.values()):
        raise DataError(f"openclipart: {len(rows):,} drawings kept in {root} leave a part empty "
                        f"({', '.join(f'{k} {v}' for k, v in sizes.items())}); expected at least "
                        f"one drawing in each (a larger --limit)")
    folder.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        write_atomic(folder / f"{part}.tsv", "".join(
            f"{png}\t{d['title']}\n" for d, png in rows if d["part"] == part))
    write_atomic(folder / "meta.tsv", "name\tpart\tpng\ttitle\tkeywords\n" + "".join(
        f"{d['name']}\t{d['part']}\t{png}\t{d['title']}\t{' '.join(d['keywords'])}\n"
        for d, png in rows))
    summary = {**settings, "drawings": len(files), "kept": len(rows), "rendered_now": rendered,
               "dropped": dict(counts), "seconds": round(time.time() - start, 1), **sizes}
    write_atomic(folder / "summary.json", json.dumps(summary, indent=1))
    log(f"openclipart: {summary['train']:,} train, {summary['val']:,} validation, "
        f"{summary['test']:,} test drawings in {summary['seconds']:.0f} s -> {folder}")
    return folder


def as_files(d, log=print):
    """``--data openclipart``: the data settings ``d`` with the built TSVs as its files (images
    rendered at ``d.height`` pixels square) and the titles' alphabet."""
    if d.val_data or d.test_data:
        raise ConfigError("--val-data and --test-data go with file data; openclipart makes its "
                          "own parts (a fixed split by a hash of each drawing's path)")
    from rnnkit.data.datasets import cache_dir
    folder = build(cache_dir() / "openclipart", d.height, log=log)
    return dataclasses.replace(d, data=str(folder / "train.tsv"), val_data=str(folder / "val.tsv"),
                               test_data=str(folder / "test.tsv"), alphabet=d.alphabet or ALPHABET)


def read_meta(folder):
    """meta.tsv -> [{name, part, png, title, keywords (a set)}]."""
    lines = (Path(folder) / "meta.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [{"name": n, "part": p, "png": png, "title": t, "keywords": set(k.split())}
            for n, p, png, t, k in (line.split("\t") for line in lines)]


def main(argv=None):
    from rnnkit.data.datasets import cache_dir
    p = argparse.ArgumentParser(description="build openclipart's image-to-text parts")
    p.add_argument("--size", type=int, default=32, help="rendered images' side in pixels")
    p.add_argument("--limit", type=int, default=0, help="keep at most this many drawings (0: all)")
    p.add_argument("--max-chars", type=int, default=MAX_CHARS)
    p.add_argument("--max-per-title", type=int, default=MAX_PER_TITLE)
    a = p.parse_args(argv)
    try:
        folder = build(cache_dir() / "openclipart", a.size, a.max_chars, a.max_per_title, a.limit)
    except DataError as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 1
    print(folder)
    print((folder / "summary.json").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
