"""The view's web server: the standard library's ThreadingHTTPServer, JSON endpoints, one
server-sent-event stream (live generation), and the page's static files. No dependency beyond
rnnkit's own; nothing is fetched from the network.

    GET  /                      the page (static/index.html); /static/<file>: its script and style
    GET  /api/runs              the runs under the served folder and the request limits
    GET  /api/run?run=ID        the run's kind, model, layers and what the page can ask of it
    GET  /api/training?run=ID&version=V   curves, gradient telemetry, images ({"unchanged"} if V holds)
    GET  /api/image?run=ID&name=loss.png  one of the run's PNGs
    POST /api/<action>          {"run": ID, ...}: text, unit, correlate (text models), beam (LM),
                                translate (seq2seq), forecast, samples (conditional generator),
                                recognize (recogniser, image-to-text: a file in base64)
    GET  /api/generate?run=ID&prime=...   LM sampling as server-sent events, a token at a time

Errors are JSON, ``{"error": message}``: 400 a bad parameter, 404 an unknown run or path, 405 a
method the path does not take, 409 a run without a checkpoint yet, 411 a body without a
Content-Length, 413 an over-long text or body, 422 a checkpoint the view cannot use.
The server binds a loopback address unless told otherwise (:func:`check_host`), and then answers
only requests addressed to a loopback name (a page elsewhere cannot reach it by DNS rebinding).
"""
import ipaddress
import json
import math
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

from rnnkit.config import ConfigError
from rnnkit.data import DataError
from rnnkit.train.checkpoint import CheckpointError
from rnnkit.view.params import LIMITS, Params, RequestError
from rnnkit.view.runs import Runs

STATIC = {"index.html": "text/html", "app.js": "text/javascript", "plots.js": "text/javascript",
          "style.css": "text/css"}
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")
GETS = ("runs", "run", "training", "image", "generate")          # the rest are POST actions


def check_host(host, allow_remote=False):
    """Refuse (ConfigError) to serve on an address other machines can reach unless asked: the
    page shows the run's files and runs its model for whoever connects."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    remote = [a for a in {i[4][0] for i in infos} if not ipaddress.ip_address(a.split("%")[0]).is_loopback]
    if remote and not allow_remote:
        raise ConfigError(f"--host {host} would serve the view on {remote[0]}, which other machines "
                          f"can reach; the view serves the run's files and model to anyone who "
                          f"connects: add --allow-remote if that is meant")
    return not remote


class ViewServer(ThreadingHTTPServer):
    daemon_threads = True           # a stream left open does not keep the process alive
    allow_reuse_address = True
    request_queue_size = 128        # connections waiting to be accepted while handlers work (5,
                                    # socketserver's: a page's burst of requests was reset)

    def __init__(self, runs, host="127.0.0.1", port=8000, allow_remote=False, log=None):
        self.local = check_host(host, allow_remote)
        self.runs = runs if isinstance(runs, Runs) else Runs(runs)
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.address_family = family
        super().__init__((host, port), Handler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


class Handler(BaseHTTPRequestHandler):
    server_version = "rnnkit-view"

    def log_message(self, format, *args):   # the console stays quiet; failures are logged
        pass

    def do_GET(self):
        self.respond("GET")

    def do_POST(self):
        self.respond("POST")

    def refuse_method(self):
        """PUT, DELETE, PATCH, OPTIONS: a JSON 405, as every other answer (not the standard
        library's HTML 501)."""
        self.send_json({"error": f"{self.command} {urlsplit(self.path).path}: the view takes GET, "
                                 f"and POST for /api/ actions"}, 405)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = refuse_method

    def do_HEAD(self):
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def respond(self, method):
        url = urlsplit(self.path)
        try:
            if self.server.local and not self.addressed_locally():
                raise RequestError("this view answers requests addressed to localhost only", 403)
            if url.path.startswith("/api/"):
                return self.api(method, url.path[5:], self.params(method, url.query))
            if method != "GET":
                raise RequestError(f"{method} {url.path}: only the /api/ paths take POST", 405)
            self.static(url.path)
        except RequestError as e:
            self.send_json({"error": e.message}, e.status)
        except (DataError, ConfigError) as e:        # the tasks' own checks of an input
            self.send_json({"error": str(e)}, 400)
        except CheckpointError as e:
            self.send_json({"error": str(e)}, 422)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:   # a defect of rnnkit: one line on the console, a 500 to the page
            line = str(e).splitlines()[0] if str(e) else ""
            self.server.log(f"rnnkit view: {method} {url.path}: {type(e).__name__}: {line}")
            self.send_json({"error": f"internal error, {type(e).__name__}: {line} (please report "
                                     f"it)"}, 500)

    def addressed_locally(self):
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        bound = self.server.server_address[0].lower()         # 127.0.0.2, as the view was told
        return name in LOCAL_NAMES or name in (bound, f"[{bound}]")

    def params(self, method, query):
        if method == "GET":
            return Params(dict(parse_qsl(query, keep_blank_values=True)))
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True        # its body is not read: the stream is not reusable
            raise RequestError("send the body with a Content-Length (not chunked)", 411)
        try:
            size = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise RequestError("Content-Length is not a number") from None
        if size < 0:                            # read(-1) would read until the client closes
            self.close_connection = True
            raise RequestError(f"Content-Length must be 0 or more, got {size}")
        if size > LIMITS["body"]:
            self.drain(size)
            raise RequestError(f"request body of {size:,} bytes; at most {LIMITS['body']:,}", 413)
        try:
            body = json.loads(self.rfile.read(size) or b"{}")
        except ValueError as e:
            raise RequestError(f"the request body is not JSON: {e}") from None
        except RecursionError:
            raise RequestError("the request body nests too deep") from None
        try:                                    # "\\ud800": valid JSON, but no text
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise RequestError("the request body holds a lone surrogate escape (such as "
                               "\\ud800), which is not text") from None
        return Params(body)

    def drain(self, size, most=16 << 20):
        """Read and drop a refused body (up to ``most`` bytes), so that the client, still
        sending, reads the answer instead of a reset connection."""
        left = min(size, most)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)
        if size > most:
            self.close_connection = True

    def api(self, method, name, p):
        runs = self.server.runs
        if name == "runs":
            found = runs.find()
            return self.send_json({"root": str(runs.root), "limits": LIMITS,
                                   "runs": [{"run": r.id, "folder": str(r.folder)} for r in found]})
        asked = p.values.get("run")
        if asked is not None and not isinstance(asked, str):
            raise RequestError(f"run must be a run's name (text), got {type(asked).__name__}")
        if method == "GET" and name not in GETS:
            raise (RequestError(f"/api/{name} takes POST with a JSON body", 405)
                   if name in actions() else RequestError(f"no page /api/{name}", 404))
        run = runs.get(asked)
        if name == "run":
            return self.send_json(run.info())
        if name == "training":
            return self.send_json(run.training(p.values.get("version")))
        if name == "image":
            return self.send(run.image(p.text("name", limit=200)), "image/png")
        if name == "generate":
            return self.stream(run.view().act("generate", p))
        if method != "POST":
            raise RequestError(f"/api/{name} takes POST with a JSON body", 405)
        return self.send_json(run.view().act(name, p))

    def stream(self, events):
        """Server-sent events: one ``data:`` line of JSON per item; an error mid-way is sent as an
        ``error`` event (the status line is already out)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            for item in events:
                self.wfile.write(b"data: " + dumps(item) + b"\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):   # the page stopped listening
            return
        except Exception as e:
            msg = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
            self.wfile.write(b"event: error\ndata: " + dumps({"error": msg}) + b"\n\n")

    def static(self, path):
        name = "index.html" if path in ("/", "/index.html") else path.removeprefix("/static/")
        if name not in STATIC:
            raise RequestError(f"no page {path!r}", 404)
        body = resources.files("rnnkit.view").joinpath("static", name).read_bytes()
        self.send(body, STATIC[name] + "; charset=utf-8")

    def send_json(self, value, status=200):
        self.send(dumps(value), "application/json; charset=utf-8", status)

    def send(self, body, content_type, status=200):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)


def actions():
    """Every POST action some kind of run's view takes (their ``ACTIONS``)."""
    from rnnkit.view.base import View
    out, todo = set(), [View]
    while todo:
        cls = todo.pop()
        out |= set(cls.ACTIONS)
        todo += cls.__subclasses__()
    return out


def dumps(value):
    """JSON bytes; NaN and infinities (a diverged loss in a log) become null, which JSON has."""
    return json.dumps(_clean(value), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _clean(v):
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v

