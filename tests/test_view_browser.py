"""``rnnkit view`` in a real browser: headless Chromium from the system's packages (``make
browser``), driven over the DevTools protocol as a user would drive the page (typing text, moving
the unit picker with the keyboard, changing the temperature, clicking), with what is drawn checked
in the DOM and screenshots written to the test's temporary folder.

Slow (``make test-browser``, or ``make test-slow``): it trains tiny runs and starts a browser;
skipped, saying why, where no Chromium is installed."""
import shutil
import threading
from urllib.parse import quote

import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.train.checkpoint import save_checkpoint
from rnnkit.view.browser import Browser, find_chromium
from rnnkit.view.server import ViewServer

from recognize_fixtures import write_captchas
from seq2seq_fixtures import train_run
from test_view import TEXT, train_lm

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_chromium() is None, reason="no Chromium installed: run "
                                 "`make browser` (Debian's chromium package) or set RNNKIT_CHROMIUM")]
QUIET = "document.body.dataset.busy === '0'"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A browser on a view of four runs: a language model, a seq2seq model, a CTC recogniser
    of captchas and a run of a kind the view does not know."""
    root = tmp_path_factory.mktemp("browser-runs")
    data = tmp_path_factory.mktemp("browser-data")
    shutil.move(train_lm(data / "lm"), root / "lm")
    train_run(data, "seq2seq", 6).rename(root / "seq2seq")
    assert main(["train", "recognize", "--data", str(write_captchas(data / "caps")), "--out",
                 str(root / "recognize"), "--height", "16", "--channels", "4", "--hidden", "6",
                 "--layers", "1", "--time-stride", "2", "--quiet", "--max-steps", "2",
                 "--batch", "4", "--warmup-steps", "0", "--test-fraction", "0.25",
                 "--val-fraction", "0.25"]) == 0
    ckpt = torch.load(root / "lm" / "best.pt", weights_only=True)
    save_checkpoint(root / "alien" / "best.pt", {**{k: v for k, v in ckpt.items()
                                                    if k not in ("format", "version", "digest")},
                                                 "kind": "telepathy"})
    server = ViewServer(root, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with Browser(width=1200, height=900, timeout=60) as b:
            b.url, b.captchas = server.url, data / "caps"
            yield b
            assert b.errors == [], b.errors    # no script error on any page
    finally:
        server.shutdown()
        server.server_close()


def open_run(b, run, n, hash=""):
    b.goto(f"{b.url}?n={n}#run={run}{hash}")    # the query makes each a fresh page load
    b.wait(f"{QUIET} && document.getElementById('run').options.length === 4")


def colours(b):
    return b.eval("[...document.querySelectorAll('#tokens .tok')].map(s => s.style.backgroundColor)")


def test_read_text_coloured_by_a_unit(page, tmp_path):
    b = page
    open_run(b, "lm", 1)
    assert "lm · best.pt (step 6) · LSTM 2×16" in b.eval("document.getElementById('model').textContent")
    b.click("#fill")                                    # a sample of the model fills the text
    b.wait(f"{QUIET} && document.querySelectorAll('#tokens .tok').length > 300")
    b.type("#text", TEXT)                               # typed: the page reads it as it changes
    b.wait(f"{QUIET} && document.querySelectorAll('#tokens .tok').length === {len(TEXT)}"
           " && document.getElementById('read-summary').dataset.unit === 'c 0 0 0'")
    assert b.eval("[...document.querySelectorAll('#tokens .tok')].map(s => s.textContent).join('')") == TEXT
    first = colours(b)
    assert len(set(first)) > 5 and all(c.startswith(("rgba(", "rgb(")) for c in first)

    b.hover("#tokens .tok[data-i='4']")                 # the side panel: the next-token guesses
    detail = b.eval("document.getElementById('detail').innerText")
    assert "token 5: “s”" in detail and "next token" in detail and "p(this token | before)" in detail
    assert b.eval("document.querySelectorAll('#detail .bars tr').length") == 10

    b.click("#unit-slider")                              # the unit picker, moved by keyboard
    b.key("Home")
    for _ in range(3):
        b.key("ArrowRight")
    b.wait(f"{QUIET} && document.getElementById('read-summary').dataset.unit === 'c 0 0 3'")
    assert b.eval("document.getElementById('unit').value") == "3" and colours(b) != first
    assert "unit=3" in b.eval("location.hash")

    b.eval("const q = document.getElementById('quantity'); q.value = 'f';"
           " q.dispatchEvent(new Event('change'))")
    b.wait(f"{QUIET} && document.getElementById('read-summary').dataset.unit === 'f 0 0 3'")
    assert all("(27, 120, 55" in c for c in colours(b))   # a gate: the 0..1 scale, green
    assert b.eval("document.querySelectorAll('#saturation circle').length") == 2 * 4 * 16
    assert "loss on this text" in b.eval("document.getElementById('read-summary').innerText")
    b.screenshot(tmp_path / "read.png")
    assert (tmp_path / "read.png").read_bytes().startswith(b"\x89PNG")


def test_find_units_for_a_selection(page):
    b = page
    open_run(b, "lm", 2, "&text=" + quote(TEXT))
    b.wait(f"{QUIET} && document.querySelectorAll('#tokens .tok').length === {len(TEXT)}")
    b.eval("const t = document.querySelectorAll('#tokens .tok'); const r = document.createRange();"
           " r.setStart(t[4], 0); r.setEnd(t[7], 1); getSelection().removeAllRanges(); getSelection().addRange(r)")
    b.click("#find")
    b.wait(f"{QUIET} && document.querySelectorAll('#found .unit-choice').length === 12")
    assert "units that follow tokens 5–8" in b.eval("document.getElementById('found').innerText")
    b.click("#found .unit-choice")
    chosen = b.eval("document.querySelector('#found .unit-choice').textContent")
    b.wait(f"{QUIET} && document.getElementById('read-summary').dataset.unit.startsWith('{chosen.split()[0]} ')")


def test_live_generation_and_temperature(page, tmp_path):
    b = page
    open_run(b, "lm", 3, "&tab=write")
    assert b.eval("!document.getElementById('tab-write').hidden")
    b.click("#temperature")
    b.key("Home")                                       # temperature 0: greedy
    assert b.eval("document.getElementById('temperature-value').textContent") == "0.00"
    b.type("#prime", "But")
    b.type("#length", "20")

    def generated():
        b.click("#generate")
        b.wait("document.getElementById('generated').dataset.done")
        assert b.eval("document.getElementById('generated').dataset.done") == "20 tokens"
        return b.eval("[...document.querySelectorAll('#generated .gen')].map(s => s.textContent).join('')")

    greedy = generated()
    assert b.eval("document.querySelectorAll('#generated .gen, #generated br').length") == 20
    assert generated() == greedy                        # greedy twice: the same text
    b.click("#temperature")
    b.key("End")                                        # temperature 2: near uniform
    assert b.eval("document.getElementById('temperature-value').textContent") == "2.00"
    b.type("#seed", "1")
    assert generated() != greedy
    assert b.eval("document.querySelector('#generated .gen').title").startswith("p = ")
    b.click("#beam-search")
    b.wait(f"{QUIET} && document.querySelectorAll('#beams li').length === 5")
    b.type("#length", "5000")                           # over the limit: the server says so
    b.click("#generate")
    b.wait("document.getElementById('generated').dataset.done === 'error'")
    assert "length must lie in [1, 2000]" in b.eval("document.getElementById('generated').innerText")
    b.screenshot(tmp_path / "write.png")


def test_translation_attention_matrix(page, tmp_path):
    b = page
    open_run(b, "seq2seq", 4)
    assert b.eval("!document.getElementById('tab-translate').hidden")
    b.type("#source", "ich sehe den hund")
    b.click("#translate")
    b.wait(f"{QUIET} && document.querySelectorAll('#outputs li').length === 6")
    T = b.eval("document.querySelectorAll('#attention svg text.heat-label').length") - 17
    assert T >= 1 and b.eval("document.querySelectorAll('#attention svg rect').length") == 17 * T
    b.screenshot(tmp_path / "translate.png")


def test_a_recogniser_reads_a_chosen_file(page, tmp_path):
    b = page
    open_run(b, "recognize", 7)
    assert b.eval("[...document.querySelectorAll('#tabs button')].filter(x => !x.hidden)"
                  ".map(x => x.textContent)") == ["Recognize", "Training"]
    assert "the model knows the symbols 12AB" in b.eval("document.getElementById('upload-hint').textContent")
    image = sorted(b.captchas.glob("*.png"))[0]
    b.choose_file("#upload", image)
    b.type("#r-beam", "3")
    b.click("#recognize")
    b.wait(f"{QUIET} && document.querySelectorAll('#readings li').length === 2")
    texts = b.eval("[...document.querySelectorAll('#readings li')].map(x => x.textContent)")
    assert texts[0].startswith("greedy (") and texts[1].startswith("beam 3 (")
    assert b.eval("document.querySelectorAll('#recognize-plots canvas').length") == 1
    assert b.eval("document.querySelector('#recognize-plots canvas').width") > 10
    assert b.eval("document.querySelectorAll('#recognize-plots svg path.series').length") >= 1
    b.screenshot(tmp_path / "recognize.png")

    wav = tmp_path / "clip.wav"
    wav.write_bytes(b"RIFF not a recording")
    b.choose_file("#upload", wav)
    b.click("#recognize")
    b.wait(f"{QUIET} && document.querySelector('#recognize-plots p.error') !== null")
    assert b.eval("document.querySelector('#recognize-plots p.error').textContent").startswith(
        "clip.wav: this model reads image files")


def test_training_curves_and_a_refused_run(page, tmp_path):
    b = page
    open_run(b, "lm", 5, "&tab=training")
    b.wait("document.querySelectorAll('#training-plots svg').length >= 2")
    assert "finished · step 6" in b.eval("document.getElementById('training-status').textContent")
    assert b.eval("document.querySelector('#images img').alt") == "loss.png"
    b.wait("document.querySelector('#images img').naturalWidth > 0")
    b.screenshot(tmp_path / "training.png")

    open_run(b, "alien", 6)
    problem = b.eval("document.getElementById('problem').innerText")
    assert "a run of kind 'telepathy', which this view does not know" in problem
    assert b.eval("document.getElementById('problem').hidden") is False
    assert b.eval("[...document.querySelectorAll('#tabs button')].filter(x => !x.hidden).map(x => x.textContent)") == ["Training"]
