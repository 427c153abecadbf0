"""Users' listings and sounds for the recogniser: a TSV with a third column or '#' lines, files
of another part that copy training files, float WAV, and a sound folder given to image-to-text."""
import struct

import numpy as np
import pytest

from rnnkit.data import DataError
from rnnkit.data import media
from rnnkit.data.media import read_listing, read_wav
from rnnkit.tasks.recognize_data import RecognizeData, read_parts

from recognize_fixtures import tone_digits, write_captchas, write_wav

QUIET = lambda *a: None


def listing(tmp_path, text):
    folder = write_captchas(tmp_path / "caps")
    path = folder / "list.tsv"
    path.write_text(text, encoding="utf-8")
    return folder, path


def test_a_third_column_is_refused_not_read_as_transcript(tmp_path):
    """'a.png<TAB>AB3<TAB>spk0' trained on the transcript 'AB3\\tspk0' (a tab in the alphabet)."""
    folder, path = listing(tmp_path, "")
    name = sorted(folder.glob("*.png"))[0].name
    for text, line in ((f"{name}\tABC\tspk0\n", 1), (f"path\ttext\tspeaker\n{name}\tAB\tx\n", 2)):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DataError, match=rf"list.tsv:{line}: expected path<TAB>transcript, "
                                            r"got 3 tab-separated fields"):
            read_listing(path)


def test_comment_lines_are_counted_and_a_hash_file_is_read_by_its_path(tmp_path):
    """Lines starting with '#' were passed over without a word: a file named '#1.png' vanished."""
    folder, path = listing(tmp_path, "")
    first = sorted(folder.glob("*.png"))[0]
    first.rename(folder / "#1.png")
    said = []
    path.write_text("#1.png\tAB\n# a note\n./#1.png\tAB\n", encoding="utf-8")
    rows = read_listing(path, said.append)
    assert [(p.name, t) for p, t, _ in rows] == [("#1.png", "AB")]
    assert len(said) == 1 and "2 lines that start with '#' were passed over as comments (the " \
                                "first: line 1; a file named '#...' is listed as ./#...)" in said[0]
    path.write_text("#1.png\tAB\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no path<TAB>transcript lines; 1 lines that start with "
                                        r"'#' were passed over as comments"):
        read_listing(path)


def test_a_given_test_part_that_copies_training_files_is_named(tmp_path, capsys):
    """A copy within --data is left out; one across --data and --test-data was not noticed."""
    folder = write_captchas(tmp_path / "caps")
    copies = tmp_path / "copies"
    copies.mkdir()
    for f in sorted(folder.glob("*.png"))[:2]:
        (copies / f.name).write_bytes(f.read_bytes())
    d = RecognizeData(data=str(folder), val_data=str(copies), test_data=str(copies), height=16)
    read_parts(d, 1, log=QUIET)
    err = capsys.readouterr().err
    for flag in ("--val-data", "--test-data"):
        assert f"{flag} {copies}: 2 of its 2 examples are also in the training part" in err


def float_wav(path, samples, width=4, extensible=False, rate=8000):
    """An IEEE-float WAV (tag 3, or WAVE_FORMAT_EXTENSIBLE with the float sub-format)."""
    data = np.asarray(samples, dtype={4: "<f4", 8: "<f8"}[width]).tobytes()
    if extensible:
        guid = struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")
        fmt = struct.pack("<HHIIHHHHI16s", 0xFFFE, 1, rate, rate * width, width, 8 * width, 22,
                          8 * width, 0, guid)
    else:
        fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * width, width, 8 * width)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.mark.parametrize("width, extensible", [(4, False), (8, False), (4, True)])
def test_float_wav_reads_as_its_pcm_twin(tmp_path, width, extensible):
    """Float WAVs (what many editors write) were 'not a readable PCM WAV file (unknown format:
    3)'."""
    x = 0.5 * np.sin(np.linspace(0, 60, 4000))
    pcm = read_wav(write_wav(tmp_path / "pcm.wav", x), 8000)
    got = read_wav(float_wav(tmp_path / "f.wav", x, width, extensible), 8000)
    assert got.shape == pcm.shape and float((got - pcm).abs().max()) < 1e-4


def test_broken_wavs_say_what_is_wrong(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty.wav: not a readable WAV file \(the file ends "
                                        r"inside its header\)"):
        read_wav(tmp_path / "empty.wav", 8000)
    float_wav(tmp_path / "nan.wav", [0.1, float("nan"), 0.2])
    with pytest.raises(DataError, match="nan.wav: float samples that are not finite"):
        read_wav(tmp_path / "nan.wav", 8000)
    whole = float_wav(tmp_path / "whole.wav", [0.1, 0.2], extensible=True).read_bytes()
    for cut in (40, 50):   # inside the extensible format chunk: the tag was rewritten onto
        (tmp_path / "cut.wav").write_bytes(whole[:cut])   # "WAVE" ("not a WAVE file")
        with pytest.raises(DataError, match=r"cut.wav: .*\(the file ends inside its header\)"):
            read_wav(tmp_path / "cut.wav", 8000)


def test_an_image_too_flat_for_a_text_line_is_refused_before_it_is_scaled(tmp_path):
    """200,000 x 1 pixels (a 274-byte file) scaled to 32 rows took 21 GB and minutes."""
    from PIL import Image

    from rnnkit.data.media import read_image
    Image.new("L", (200_000, 1), 0).save(tmp_path / "flat.png")
    with pytest.raises(DataError, match=r"^list.tsv:3: .*flat.png: 200000x1 pixels, 6,400,000 "
                                        r"columns wide at --height 32 \(at most 50,000\)"):
        read_image(tmp_path / "flat.png", 32, where="list.tsv:3")
    Image.new("L", (10_000, 1), 0).save(tmp_path / "line.png")
    assert read_image(tmp_path / "line.png", 4).shape == (4, 40_000)   # within the bound


def test_image_to_text_refuses_sounds_before_reading_them(tmp_path, monkeypatch):
    """It read (and for spoken-digits built) every sound first, then said it reads images."""
    from rnnkit.models.image_to_text import ImageToTextConfig
    from rnnkit.tasks.image_to_text import build_image_to_text_task
    folder = tmp_path / "sounds"
    folder.mkdir()
    for i in range(4):
        write_wav(folder / f"{i}{i}.wav", np.zeros(800))

    def never(*args, **kwargs):
        raise AssertionError("a sound was read")
    monkeypatch.setattr(media, "read_wav", never)
    monkeypatch.setattr("rnnkit.tasks.recognize_data.read_wav", never)
    for data in (str(folder), "spoken-digits"):
        with pytest.raises(DataError, match="image-to-text reads images, this data holds sounds"):
            build_image_to_text_task(RecognizeData(data=data), ImageToTextConfig(), log=QUIET)


def test_24_bit_wav_reads_as_its_32_bit_twin(tmp_path):
    """24-bit PCM, a recorder's and a DAW's usual format, was refused."""
    x = tone_digits("12")
    got = read_wav(write_wav(tmp_path / "24.wav", x, width=3), 8000)
    want = read_wav(write_wav(tmp_path / "32.wav", x, width=4), 8000)
    assert np.abs(got.numpy() - want.numpy()).max() <= 2 ** -22
    assert got.abs().max() > 0.4
    whole = (tmp_path / "24.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:44 + 3 * 100 + 2])    # a sample cut in two
    with pytest.raises(DataError, match=r"cut.wav: truncated: its header says [\d,]+ frames, "
                                        r"the file holds 100"):
        read_wav(tmp_path / "cut.wav", 8000)


def test_mel_filters_that_catch_no_frequency_are_said(tmp_path, capsys):
    """--n-mels 256 at 8 kHz: 58 filters narrower than an FFT bin gave constant features, unsaid
    (torchaudio warns of such filters too)."""
    from rnnkit.tasks.recognize_data import read_files
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("ab", "cd"):
        write_wav(folder / f"{name}.wav", np.zeros(800))
    read_files(folder, RecognizeData(data=str(folder), n_mels=256))
    assert "58 of the 256 mel filters (--n-mels) catch no frequency of 8000 Hz sound's 25 ms " \
           "window: their features are constant; --n-mels 95 or fewer has none such" \
        in capsys.readouterr().err
    read_files(folder, RecognizeData(data=str(folder)))
    assert "mel filters" not in capsys.readouterr().err
