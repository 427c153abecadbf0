"""Users' files for the recogniser: images with transparency, 16-bit greys or an EXIF
orientation, folders of other image formats and of copies' names, TSVs with a byte-order mark,
a header or another encoding, and characters that only held-out files hold."""
import numpy as np
import pytest
from PIL import Image

from rnnkit.data import DataError
from rnnkit.data.media import read_image, read_listing
from rnnkit.models.recognizer import RecognizerConfig, SequenceRecognizer
from rnnkit.tasks.recognize import Recognizer
from rnnkit.tasks.recognize_data import RecognizeData, read_parts

from recognize_fixtures import TINY_MODEL

W, H = 40, 10                 # fixture images: W columns, H rows, a dark block in columns 16..23
QUIET = lambda *a: None


def block(fill, ink, mode):
    """A W x H image of ``fill`` with an ``ink`` block, of PIL ``mode``."""
    im = Image.new(mode, (W, H), fill)
    im.paste(ink, (16, 0, 24, H))
    return im


def transparent(mode):
    """Black ink on a transparent background: RGBA, LA, or a palette with a transparent index."""
    if mode == "P":
        im = block(0, 1, "P")
        im.putpalette([0, 0, 0] * 256)
        im.info["transparency"] = 0
        return im
    return block((0,) * len(mode), (0,) * (len(mode) - 1) + (255,), mode)


def ink_on_white(pixels):
    """True if ``pixels`` (H, W) read the fixture: a white background and a black block."""
    return pixels[:, :8].min() == 255 and pixels[:, 18:22].max() < 30


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_flattened_onto_white(tmp_path, mode):
    transparent(mode).save(tmp_path / "t.png")
    assert ink_on_white(read_image(tmp_path / "t.png", H))


def test_16_bit_greys_are_scaled_by_their_range(tmp_path):
    grey = np.full((H, W), 4000, dtype=np.uint16)
    grey[:, 16:24] = 1000
    Image.fromarray(grey).save(tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as im:
        assert im.mode.startswith("I")
    assert ink_on_white(read_image(tmp_path / "g.png", H))


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6                       # shown turned 90 degrees: H columns, W rows
    block(255, 0, "L").save(tmp_path / "r.jpg", exif=exif)
    pixels = read_image(tmp_path / "r.jpg", W)
    assert pixels.shape == (W, H)
    assert pixels[:8].min() > 200 and pixels[18:22].max() < 60


def test_recognize_reads_images_as_training_does(tmp_path):
    transparent("RGBA").save(tmp_path / "t.png")
    block(255, 0, "L").save(tmp_path / "flat.png")
    model = SequenceRecognizer(RecognizerConfig(num_classes=3, features=H, **TINY_MODEL))
    reader = Recognizer(model, "ab", "image", RecognizeData(height=H))
    assert reader.features(tmp_path / "t.png").equal(reader.features(tmp_path / "flat.png"))


def test_folder_reads_other_formats_and_warns_of_the_rest(tmp_path):
    for suffix in ("bmp", "gif", "webp", "tif"):
        block(255, 0, "L").save(tmp_path / f"ab_{suffix}.{suffix}")
    transparent("P").save(tmp_path / "ab_t.gif")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    rows = read_listing(tmp_path)
    assert [t for _, t, _ in rows] == ["ab"] * 5
    said = []
    read_listing(tmp_path, said.append)
    assert said == [f"{tmp_path}: 1 file(s) skipped, neither an image (.png, .jpg, .bmp, .gif, "
                    f".webp, .tif) nor a sound (.wav) (e.g. notes.txt)"]
    assert all(ink_on_white(read_image(p, H)) for p, _, _ in rows)


def test_folder_labels_cut_copies_names(tmp_path):
    names = ["abc12", "abc12 (1)", "abc12-2", "abc12_9 (2)", "x-1", "a-b", "2024-01"]
    for name in names:
        block(255, 0, "L").save(tmp_path / f"{name}.png")
    labels = {p.stem: t for p, t, _ in read_listing(tmp_path)}
    assert labels == {"abc12": "abc12", "abc12 (1)": "abc12", "abc12-2": "abc12",
                      "abc12_9 (2)": "abc12", "x-1": "x-1", "a-b": "a-b", "2024-01": "2024-01"}
    said = []
    read_listing(tmp_path, said.append)
    assert len(said) == 1 and "abc12-2.png as 'abc12'" in said[0]


def test_folder_labels_leave_out_the_white_space_around_them(tmp_path):
    """'AB12 .png' was 'AB12 ': a space the model learnt as a class, and eval refused."""
    block(255, 0, "L").save(tmp_path / "AB12 .png")
    block(255, 0, "L").save(tmp_path / " cd_1.png")
    assert sorted(t for _, t, _ in read_listing(tmp_path)) == ["AB12", "cd"]


def test_folder_labels_cut_macos_copies_names(tmp_path):
    """macOS names a copy "abc copy.png", "abc copy 2.png": the transcripts were "abc copy".
    The ending is cut only where the rest is another file's transcript."""
    names = ["GDGA", "GDGA copy", "GDGA copy 2", "make a copy", "make a copy 2", "Fair Copy 3"]
    for name in names:
        block(255, 0, "L").save(tmp_path / f"{name}.png")
    labels = {p.stem: t for p, t, _ in read_listing(tmp_path)}
    assert labels == {"GDGA": "GDGA", "GDGA copy": "GDGA", "GDGA copy 2": "GDGA",
                      "make a copy": "make a copy", "make a copy 2": "make a copy",
                      "Fair Copy 3": "Fair Copy 3"}


def write_listing(tmp_path, text, encoding="utf-8"):
    block(255, 0, "L").save(tmp_path / "a.png")
    (tmp_path / "list.tsv").write_bytes(text.encode(encoding))
    return tmp_path / "list.tsv"


@pytest.mark.parametrize("text", [
    "\ufeffa.png\tab\n",
    "path\ttext\na.png\tab\n",
    "\ufeff# made by hand\r\nFile\tTranscript\r\na.png\tab\r\n",
    "image\tlabel\na.png\tab\n",
    "wav\tsentence\na.png\tab\n",
])
def test_tsv_byte_order_mark_and_header_are_skipped(tmp_path, text):
    rows = read_listing(write_listing(tmp_path, text))
    assert [(p.name, t) for p, t, _ in rows] == [("a.png", "ab")]


def test_tsv_header_only_on_the_first_line(tmp_path):
    with pytest.raises(DataError, match=r"list.tsv:2: 'path' is neither an image"):
        read_listing(write_listing(tmp_path, "a.png\tab\npath\ttext\n"))


def test_latin_1_tsv_is_named_with_its_line(tmp_path):
    with pytest.raises(DataError) as e:
        read_listing(write_listing(tmp_path, "a.png\tab\na.png\tcafé\n", "latin-1"))
    assert str(e.value).startswith(f"{tmp_path / 'list.tsv'}:2: not UTF-8")
    assert "\n" not in str(e.value)


def letters_folder(tmp_path):
    """Eight images (each its own: copies would be left out), 'z' only in zab.png."""
    for i, name in enumerate(["ab", "ba", "aab", "bba", "abab", "baa", "bab", "zab"]):
        block(255, 10 * i, "L").save(tmp_path / f"{name}.png")
    return tmp_path


def test_held_out_characters_join_the_alphabet_with_a_warning(tmp_path, capsys):
    folder, held_out = letters_folder(tmp_path), 0
    for seed in range(8):
        d = RecognizeData(data=str(folder), height=H, test_fraction=0.25, val_fraction=0.25,
                          split_seed=seed)
        parts = read_parts(d, 1, log=QUIET)
        err = capsys.readouterr().err
        assert parts.alphabet == "abz"
        trained = any(w.endswith("zab.png") for _, _, w in parts.train)
        assert ("'z' of the alphabet are in no training file" in err) == (not trained)
        assert trained or "zab.png" in err
        held_out += not trained
    assert held_out                        # some seed held zab.png out


def test_character_outside_a_given_alphabet_names_its_file_and_part(tmp_path):
    d = RecognizeData(data=str(letters_folder(tmp_path)), height=H, alphabet="ab",
                      test_fraction=0.25, val_fraction=0.25)
    with pytest.raises(DataError, match=r"zab.png: transcript 'zab' has 'z', which is not in the "
                       r"alphabet 'ab' \((training|validation|test) part; --alphabet sets"):
        read_parts(d, 1, log=QUIET)


def test_an_evaluation_of_only_too_short_examples_is_refused_in_one_line(capsys):
    """It warned that they are scored as read, then refused, naming none of them."""
    import torch

    from rnnkit.tasks.recognize_data import keep_fitting
    short = [(torch.zeros(4, 3), [1, 2], f"e.tsv:{n}") for n in range(1, 6)]   # 3 // 4 = 0
    with pytest.raises(DataError, match=r"^no evaluation example is long enough for its "
                                        r"transcript under CTC at time stride 4 \(none of 5: "
                                        r"e.tsv:1, e.tsv:2, e.tsv:3, \.\.\.\)$"):
        keep_fitting(short, 4, "evaluation")
    assert capsys.readouterr().err == ""
    fits = [(torch.zeros(4, 12), [1, 2], "e.tsv:6")]
    assert len(keep_fitting(short + fits, 4, "evaluation")) == 6   # scored, all of them
    assert "5 evaluation example(s) scored as they are read" in capsys.readouterr().err
