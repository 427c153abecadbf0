"""openclipart's titled drawings as image-to-text data (rnnkit.data.openclipart), on hand-written
SVGs: metadata, title normalising, the English filter, the fixed split, rendering (skipped
without rsvg-convert) and ``--data openclipart`` through the recogniser's TSV path."""
import json
import shutil

import pytest

from rnnkit.config import ConfigError
from rnnkit.data import DataError
from rnnkit.data import openclipart as oc

HAS_RSVG = shutil.which("rsvg-convert") is not None
needs_rsvg = pytest.mark.skipif(not HAS_RSVG, reason="rsvg-convert not installed "
                                                     "(make clipart-data)")
VOCAB = {"red", "apple", "blue", "car", "green", "tree", "house", "sun"}


def svg(title, keywords=(), shape='<circle cx="50" cy="50" r="40" fill="black"/>'):
    bag = "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:cc="http://web.resource.org/cc/"
     xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" width="100" height="50"
     viewBox="0 0 100 50">
  <metadata><rdf:RDF><cc:Work rdf:about="">
    <dc:title>{title}</dc:title>
    <dc:subject><rdf:Bag>{bag}</rdf:Bag></dc:subject>
    <dc:publisher><cc:Agent><dc:title>Open Clip Art Library</dc:title></cc:Agent></dc:publisher>
  </cc:Work></rdf:RDF></metadata>
  {shape}
</svg>""".encode()


def test_metadata_reads_the_works_title_and_keywords():
    title, keywords = oc.metadata(svg("Red Apple", ["fruit", "food_and_drink"]), "a.svg")
    assert title == "Red Apple"                      # not the publisher's dc:title
    assert keywords == ["fruit", "food_and_drink"]
    assert oc.keyword_words(keywords) == {"fruit", "food", "and", "drink"}
    assert oc.metadata(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "b.svg") == ("", [])


def test_metadata_rejects_a_broken_file_and_never_resolves_an_external_entity(tmp_path):
    with pytest.raises(DataError, match="b.svg: not a readable SVG"):
        oc.metadata(b"<svg><dc:title>unclosed", "b.svg")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    xxe = (f'<!DOCTYPE svg [<!ENTITY x SYSTEM "file://{secret}">]>'
           f'<svg><title>&x;</title></svg>').encode()
    with pytest.raises(DataError, match="c.svg"):
        oc.metadata(xxe, "c.svg")


@pytest.mark.parametrize("raw, want", [
    ("Red Apple", "red apple"),
    ("Clipart by Nicu Buculei - jigsaw_red_10", "jigsaw red 10"),
    ("Café_Noir-2", "cafe noir 2"),
    ("tiger03", "tiger 03"),
    ("mp3 p2p", "mp3 p2p"),
    ("Part of the Flat Icon Collection (Wed Aug 25 23:29:46 2004)",
     "part of the flat icon collection"),                    # cut at a word, 32 characters
    ("  ", ""), ("日本", ""),
])
def test_normalise(raw, want):
    got = oc.normalise(raw)
    assert got == want
    assert len(got) <= oc.MAX_CHARS and set(got) <= set(oc.ALPHABET)


def test_normalise_cuts_a_single_long_word():
    assert oc.normalise("x" * 50, 10) == "x" * 10


def test_english_looking():
    assert oc.english_looking("red apple", VOCAB)
    assert oc.english_looking("red mela", VOCAB)             # half is enough
    assert not oc.english_looking("mela rossa", VOCAB)
    assert not oc.english_looking("42", VOCAB)               # no letter word at all


def test_the_split_is_fixed_by_name_and_near_80_10_10():
    names = [f"animals/drawing_{i}.svg" for i in range(3000)]
    parts = [oc.part_of(n) for n in names]
    assert parts == [oc.part_of(n) for n in names]
    share = {p: parts.count(p) / len(parts) for p in oc.PARTS}
    assert abs(share["train"] - 0.8) < 0.03 and abs(share["test"] - 0.1) < 0.02


def test_select_drops_empty_foreign_repeated_and_broken():
    drawings = [("a.svg", svg("Red Apple", ["fruit"])), ("b.svg", svg("Mela rossa")),
                ("c.svg", svg("")), ("d.svg", b"not xml"), ("e.svg", svg("red apple")),
                ("f.svg", svg("Blue Car")), ("g/f.svg", svg("Blue Car"))]
    kept, counts = oc.select(drawings, VOCAB, max_per_title=1)
    assert sorted(d["title"] for d in kept) == ["blue car", "red apple"]
    assert counts == {"not English-looking": 1, "no title": 1, "unreadable": 1,
                      "over 1 a title": 1, "a copy of another": 1}
    kept, _ = oc.select(drawings, VOCAB, limit=1)
    assert len(kept) == 1


def fixture_root(tmp_path):
    """Four drawings, at least one in each part (names picked by their hash)."""
    root = tmp_path / "svg"
    (root / "sub").mkdir(parents=True)
    titles = iter(["Red Apple", "Blue Car", "Green Tree", "Sun House"])
    want = ["train", "train", "val", "test"]
    i = 0
    while want:
        name = f"sub/d{i}.svg"
        if oc.part_of(name) == want[0]:
            want.pop(0)
            (root / name).write_bytes(svg(next(titles), ["thing"]))
        i += 1
    return root


def test_a_missing_package_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="make clipart-data"):
        oc.build(tmp_path / "cache", 16, root=tmp_path / "none", vocabulary=VOCAB)


@needs_rsvg
def test_build_renders_once_and_writes_the_parts(tmp_path, monkeypatch):
    from PIL import Image
    root, cache = fixture_root(tmp_path), tmp_path / "cache"
    folder = oc.build(cache, 16, root=root, vocabulary=VOCAB, log=lambda *a: None)
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["train"], summary["val"], summary["test"]) == (2, 1, 1)
    rows = [line.split("\t") for line in (folder / "train.tsv").read_text().splitlines()]
    assert sorted(t for _, t in rows) == ["blue car", "red apple"]
    with Image.open(rows[0][0]) as im:
        assert im.mode == "L" and im.size == (16, 16)
        assert im.getpixel((0, 0)) == 255 and im.getpixel((8, 8)) < 128   # white around, drawn
    meta = oc.read_meta(folder)
    assert {m["part"] for m in meta} == set(oc.PARTS) and meta[0]["keywords"] == {"thing"}
    monkeypatch.setattr(oc, "render", lambda *a: pytest.fail("rendered twice"))
    assert oc.build(cache, 16, root=root, vocabulary=VOCAB) == folder       # cached
    other = oc.build(cache, 16, max_per_title=5, root=root, vocabulary=VOCAB, log=lambda *a: 0)
    assert other != folder                  # another setting, another folder, same PNGs


@needs_rsvg
def test_a_part_left_empty_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="leave a part empty"):
        oc.build(tmp_path / "cache", 16, root=fixture_root(tmp_path), limit=1, vocabulary=VOCAB)


@needs_rsvg
def test_data_openclipart_reads_the_parts_as_files(tmp_path, monkeypatch):
    from rnnkit.tasks.recognize_data import RecognizeData, read_parts
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(oc, "ROOT", fixture_root(tmp_path))
    monkeypatch.setattr(oc, "english_words", lambda log=print: VOCAB)
    parts = read_parts(RecognizeData(data="openclipart", height=16), 1, log=lambda *a: None)
    assert (len(parts.train), len(parts.val), len(parts.test)) == (2, 1, 1)
    assert parts.alphabet == oc.ALPHABET and parts.kind == "image" and parts.features == 16
    assert parts.train[0][0].shape == (16, 16)
    with pytest.raises(ConfigError, match="openclipart makes its own parts"):
        read_parts(RecognizeData(data="openclipart", test_data="x.tsv"), 1)


@pytest.mark.slow
@needs_rsvg
def test_train_image_to_text_on_openclipart_and_read_a_drawing(tmp_path, monkeypatch, capsys):
    from rnnkit.cli.main import main
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(oc, "ROOT", fixture_root(tmp_path))
    monkeypatch.setattr(oc, "english_words", lambda log=print: VOCAB)
    run = tmp_path / "run"
    assert main(["train", "image-to-text", "--data", "openclipart", "--out", str(run), "--quiet",
                 "--max-steps", "2", "--height", "16", "--conv-layers", "2", "--channels", "4",
                 "--vector", "8", "--hidden", "8", "--batch", "2", "--max-len", "12"]) == 0
    assert json.loads((run / "metrics.json").read_text())["test_size"] == 1
    png = next((tmp_path / "data" / "openclipart" / "png-16").glob("*.png"))
    capsys.readouterr()
    assert main(["recognize", str(run), str(png)]) == 0
    text = capsys.readouterr().out.split("\t")[1]
    assert set(text) <= set(oc.ALPHABET) and len(text) <= 12


def test_data_openclipart_without_the_package_is_one_line(tmp_path, monkeypatch, capsys):
    from rnnkit.cli.main import main
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(oc, "ROOT", tmp_path / "missing")
    assert main(["train", "image-to-text", "--data", "openclipart", "--out",
                 str(tmp_path / "run"), "--max-steps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "install them with `make clipart-data`" in err[0], err


def test_split_flags_are_refused_not_ignored():
    """openclipart's split is fixed by path hash: flags that would change it are an error."""
    import pytest
    from rnnkit.config import ConfigError
    from rnnkit.tasks.recognize_data import RecognizeData, read_parts
    for kw in (dict(test_fraction=0.2), dict(val_fraction=0.05), dict(split_seed=3)):
        with pytest.raises(ConfigError, match="fixed split"):
            read_parts(RecognizeData(data="openclipart", **kw), 1, lambda *a: None)
