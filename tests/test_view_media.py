"""``rnnkit view`` on the runs that read images or sound: a file sent from the page (base64 in
the JSON body) is read as ``rnnkit recognize`` reads it, with the input as the model sees it and,
for a CTC recogniser, each label's probability frame by frame; and the bad uploads refused."""
import base64

import pytest

from rnnkit.cli.main import main
from rnnkit.tasks.image_to_text import ImageReader
from rnnkit.tasks.recognize import Recognizer
from rnnkit.view.params import LIMITS

from recognize_fixtures import tone_digits, write_captchas, write_tsv, write_wav
from test_view import Served

COMMON = ["--quiet", "--max-steps", "2", "--batch", "4", "--warmup-steps", "0",
          "--test-fraction", "0.25", "--val-fraction", "0.25"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A CTC recogniser and an image-to-text run on 12 captchas, a CTC recogniser on WAVs."""
    root = tmp_path_factory.mktemp("view-media")
    data = tmp_path_factory.mktemp("view-media-data")
    caps = write_captchas(data / "caps")
    assert main(["train", "recognize", "--data", str(caps), "--out", str(root / "recognize"),
                 "--height", "16", "--channels", "4", "--hidden", "6", "--layers", "1",
                 "--time-stride", "2", *COMMON]) == 0
    assert main(["train", "image-to-text", "--data", str(caps), "--out",
                 str(root / "image-to-text"), "--height", "16", "--conv-layers", "2",
                 "--channels", "4", "--vector", "8", "--hidden", "8", "--layers", "1",
                 "--max-len", "6", *COMMON]) == 0
    rows = []
    for i, digits in enumerate(["12", "21", "1", "2", "112", "221", "12", "2"]):
        write_wav(data / f"u{i}.wav", tone_digits(digits, seed=i))
        rows.append((f"u{i}.wav", digits))
    assert main(["train", "recognize", "--data", str(write_tsv(data / "list.tsv", rows)),
                 "--out", str(root / "speech"), "--n-mels", "16", "--sample-rate", "8000",
                 "--channels", "4", "--hidden", "6", "--layers", "1", "--time-stride", "2",
                 *COMMON]) == 0
    with Served(root) as s:
        yield s, root, data


def upload(path, name=None):
    return {"name": name or path.name, "file": base64.b64encode(path.read_bytes()).decode()}


def test_a_recogniser_reads_an_uploaded_image_frame_by_frame(runs):
    s, root, data = runs
    status, info = s.ask("/api/run?run=recognize")
    assert status == 200 and info["actions"] == ["recognize"] and info["input"] == "image"
    assert info["file_limit"] == LIMITS["file"] and ".png" in info["suffixes"]
    image = sorted((data / "caps").glob("*.png"))[0]
    status, r = s.ask("/api/recognize", {"run": "recognize", **upload(image), "beam": 3})
    assert status == 200, r
    want = Recognizer.load(root / "recognize")
    (greedy, g_score), (beam, _) = want.recognize([image])[0], want.recognize([image], 3)[0]
    assert [(t["name"], t["text"]) for t in r["texts"]] == [("greedy", greedy), ("beam 3", beam)]
    assert r["texts"][0]["score"] == pytest.approx(g_score, abs=1e-3)
    lp, x = want.log_probs(image)
    assert r["input"]["size"] == list(x.shape) and len(r["input"]["rows"]) == x.shape[0]
    assert all(0 <= v <= 1 for row in r["input"]["rows"] for v in row)
    f = r["frames"]
    assert f["count"] == lp.shape[0] == len(f["centres"]) == len(f["greedy"])
    assert f["labels"][0] == "blank" and len(f["labels"]) == len(f["probabilities"])
    assert f["greedy"] == lp.argmax(-1).tolist()
    # each label of the greedy path is drawn, with its probabilities frame by frame
    shown = {want.alphabet[k - 1] for k in f["greedy"] if k}
    assert shown <= set(f["labels"][1:])
    k = f["labels"].index(want.alphabet[f["greedy"][0] - 1]) if f["greedy"][0] else 0
    assert f["probabilities"][k][0] == pytest.approx(float(lp[0].exp().max()), abs=1e-3)


def test_a_speech_recogniser_and_an_image_to_text_run(runs):
    s, root, data = runs
    status, r = s.ask("/api/recognize", {"run": "speech", **upload(data / "u4.wav")})
    assert status == 200, r
    assert r["kind"] == "audio" and r["input"]["size"][0] == 16
    assert r["texts"][0]["text"] == Recognizer.load(root / "speech").recognize([data / "u4.wav"])[0][0]
    image = sorted((data / "caps").glob("*.png"))[1]
    status, r = s.ask("/api/recognize", {"run": "image-to-text", **upload(image), "beam": 2})
    assert status == 200, r
    want = ImageReader.load(root / "image-to-text")
    assert [t["text"] for t in r["texts"]] == [want.recognize([image])[0][0],
                                              want.recognize([image], 2)[0][0]]
    assert "frames" not in r and r["input"]["size"][0] == 16


def test_bad_uploads_are_refused_naming_the_file(runs, tmp_path):
    s, root, data = runs
    wav, image = data / "u0.wav", sorted((data / "caps").glob("*.png"))[0]
    status, r = s.ask("/api/recognize", {"run": "recognize", **upload(wav)})
    assert status == 400 and r["error"].startswith("u0.wav: this model reads image files")
    assert "rnnkit-view-" not in r["error"]                      # not the temporary file's path
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    status, r = s.ask("/api/recognize", {"run": "recognize", **upload(tmp_path / "broken.png")})
    assert status == 400 and r["error"].startswith("broken.png: not a readable image")
    status, r = s.ask("/api/recognize", {"run": "recognize", "name": "a.png", "file": "%%%"})
    assert status == 400 and "base64" in r["error"]
    for bad in ("..", "a\x00.png"):
        status, r = s.ask("/api/recognize", {"run": "recognize", **upload(image, bad)})
        assert status == 400 and "name must be the file's name" in r["error"]
    status, r = s.ask("/api/recognize", {"run": "recognize", "name": "a.png", "file": ""})
    assert status == 400 and r["error"] == "a.png is empty (0 bytes)"
    big = base64.b64encode(b"\0" * (LIMITS["file"] + 1)).decode()
    status, r = s.ask("/api/recognize", {"run": "recognize", "name": "big.png", "file": big})
    assert status == 413 and f"at most {LIMITS['file']:,}" in r["error"]
    status, r = s.ask("/api/recognize", {"run": "speech", **upload(image)})
    assert status == 400 and "this model reads audio files" in r["error"]
    status, r = s.ask("/api/recognize", {"run": "image-to-text", **upload(wav)})
    assert status == 400 and "this model reads images" in r["error"]
    status, r = s.ask("/api/text", {"run": "recognize", "text": "abc"})
    assert status == 400 and "no 'text' view; it offers recognize" in r["error"]
