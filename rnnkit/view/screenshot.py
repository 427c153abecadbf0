"""A PNG of ``rnnkit view``'s page for a run, taken with headless Chromium (the README's picture):

    python -m rnnkit.view.screenshot runs/q3/shakespeare/rnnkit docs/view.png \\
        --text "$(printf 'JULIET.\\nO Romeo, Romeo! wherefore art thou Romeo?\\n')" --unit c:2:148

The view is served on a free loopback port for the length of the capture; the page is driven as a
user would (its URL's hash sets the tab, text and unit; the mouse rests on a token so that the side
panel shows its predictions). Needs Chromium (``make browser``)."""
import argparse
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlencode

from rnnkit.view.browser import Browser, BrowserError
from rnnkit.view.server import ViewServer

QUIET = "document.body.dataset.busy === '0'"


def capture(run, out, tab="read", text=None, unit=None, hover=None, width=1200, height=760,
            generate=None, timeout=60):
    """Write a PNG of the page of ``run`` to ``out``. unit: "quantity:layer:unit" (layer from 1,
    as the page counts); hover: the token the mouse rests on (default: a third of the way in);
    generate: a prime to sample from on the Write tab (the page's own controls)."""
    server = ViewServer(run, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        state = {"tab": tab}
        if text:
            state["text"] = text
        if unit:
            q, layer, u = unit.split(":")
            state.update(quantity=q, layer=int(layer) - 1, unit=int(u))
        if generate is not None:
            state.update(prime=generate, temperature="0.7")
        with Browser(width=width, height=height, timeout=timeout) as b:
            b.goto(server.url + "?capture=1#" + urlencode(state))
            b.wait(f"{QUIET} && document.getElementById('model').textContent !== ''")
            if tab == "read" and text:
                b.wait(f"{QUIET} && document.getElementById('read-summary').dataset.unit")
                n = b.eval("document.querySelectorAll('#tokens .tok').length")
                b.hover(f"#tokens .tok[data-i='{min(n - 1, hover if hover is not None else n // 3)}']")
            if generate is not None:
                b.eval("document.getElementById('length').value = 240")
                b.click("#generate")
                b.wait("document.getElementById('generated').dataset.done")
            b.wait(QUIET)
            if b.errors:
                raise BrowserError(f"the page failed: {b.errors[0]}")
            with tempfile.TemporaryDirectory() as tmp:
                shot = Path(tmp) / "page.png"
                b.screenshot(shot)
                out = Path(out)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(shot.read_bytes())
    finally:
        server.shutdown()
        server.server_close()
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m rnnkit.view.screenshot", description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="a run folder or checkpoint file")
    p.add_argument("out", type=Path, help="the PNG to write")
    p.add_argument("--tab", default="read", choices=("read", "write", "translate", "forecast",
                                                     "samples", "training"))
    p.add_argument("--text", help="the text the Read tab shows")
    p.add_argument("--unit", help="quantity:layer:unit to colour by, e.g. c:2:148")
    p.add_argument("--hover", type=int, help="the token (from 0) the mouse rests on")
    p.add_argument("--generate", metavar="PRIME", help="Write tab: sample from this prime first")
    p.add_argument("--width", type=int, default=1200)
    p.add_argument("--height", type=int, default=760)
    args = p.parse_args(argv)
    if not args.run.exists():
        p.error(f"{args.run}: no such run folder or checkpoint file")
    try:
        out = capture(args.run, args.out, args.tab, args.text, args.unit, args.hover, args.width,
                      args.height, args.generate)
    except BrowserError as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 1
    print(f"{out}: {out.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
