"""``rnnkit view``: the server's JSON endpoints on a tiny trained language model, the training
curves of a live run, bad requests answered 4xx with a message (never 500), runs the view
refuses with a message, and the refusal to serve a reachable address unless asked.
(tests/test_view_kinds.py: the other run kinds; tests/test_view_browser.py: a real browser.)"""
import json
import os
import shutil
import threading
import urllib.error
import urllib.request

import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.config import ConfigError
from rnnkit.train.checkpoint import save_checkpoint
from rnnkit.view.params import LIMITS
from rnnkit.view.probe import recording
from rnnkit.view.server import ViewServer, check_host

from lm_fixtures import write_corpus

FAST = ["--max-steps", "6", "--eval-every", "3", "--warmup-steps", "0", "--quiet"]
TEXT = "But soft, what light"


class Served:
    """A view server on a free port in a thread, for the length of a ``with`` block."""

    def __init__(self, root, **kw):
        self.server = ViewServer(root, port=0, **kw)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def ask(self, path, body=None, headers=None, raw=False):
        """(status, JSON answer, or the bytes with raw) of a GET, or of a POST of ``body``."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server.url + path.lstrip("/"), data=data,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, payload = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, payload = e.code, e.read()
        return status, (payload if raw else json.loads(payload))

    def events(self, query):
        """The JSON items of a server-sent-event stream, and the raw text."""
        status, raw = self.ask("/api/generate?" + query, raw=True)
        assert status == 200, raw
        text = raw.decode()
        return [json.loads(l[6:]) for l in text.splitlines() if l.startswith("data: ")], text


def train_lm(folder, *flags):
    folder.mkdir(parents=True, exist_ok=True)
    run = folder / "lm"
    assert main(["train", "lm", "--data", str(write_corpus(folder)), "--out", str(run),
                 "--layers", "2", "--hidden", "16", "--seq-len", "16", "--batch", "4",
                 "--log-every", "2", *FAST, *flags]) == 0
    return run


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    return train_lm(tmp_path_factory.mktemp("view-lm"))


def test_lm_text_unit_correlate(lm_run):
    with Served(lm_run) as s:
        status, runs = s.ask("/api/runs")
        assert status == 200 and [r["run"] for r in runs["runs"]] == ["."]
        assert runs["limits"] == LIMITS
        status, info = s.ask("/api/run")
        assert info["kind"] == "lm" and info["step"] == 6 and info["checkpoint"] == "best.pt"
        assert info["layers"] == {"cell": "LSTM", "layers": 2, "directions": 1, "hidden": 16,
                                  "quantities": ["h", "c", "i", "f", "g", "o"]}
        assert {"text", "unit", "correlate", "generate", "beam"} <= set(info["actions"])

        status, r = s.ask("/api/text", {"text": TEXT})
        assert status == 200 and r["tokens"] == list(TEXT) and r["unknown"] == []
        assert len(r["next"]) == len(TEXT) and all(len(row) == 10 for row in r["next"])
        probs = [p for _, p in r["next"][0]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
        assert r["p_token"][0] is None and all(0 < p <= 1 for p in r["p_token"][1:])
        assert r["loss"] > 0
        sat = r["saturation"]
        assert [(x["layer"], x["direction"]) for x in sat] == [(0, 0), (1, 0)]
        assert [g["gate"] for g in sat[0]["gates"]] == ["i", "f", "g", "o"]
        assert all(len(g["left"]) == 16 and 0 <= g["mean_right"] <= 1 for g in sat[1]["gates"])

        status, u = s.ask("/api/unit", {"text": TEXT, "quantity": "f", "layer": 1, "unit": 5})
        assert status == 200 and len(u["values"]) == len(TEXT) and u["scale"] == "unit"
        assert all(0 <= v <= 1 for v in u["values"])
        status, c = s.ask("/api/unit", {"text": TEXT, "quantity": "c", "layer": 0, "unit": 15})
        assert c["scale"] == "signed" and c["max_abs"] == pytest.approx(max(map(abs, c["values"])), abs=1e-3)

        status, found = s.ask("/api/correlate", {"text": TEXT, "start": 4, "end": 8})
        assert status == 200 and len(found["units"]) == 12
        rs = [abs(f["r"]) for f in found["units"]]
        assert rs == sorted(rs, reverse=True) and rs[0] <= 1.0001
        top = found["units"][0]
        status, v = s.ask("/api/unit", {"text": TEXT, **{k: top[k] for k in ("quantity", "layer", "direction", "unit")}})
        inside = sum(v["values"][4:8]) / 4
        outside = (sum(v["values"]) - 4 * inside) / (len(TEXT) - 4)
        assert (inside - outside) * top["r"] > 0   # the unit does follow the selection


def test_recorded_layer_is_restored(lm_run):
    from rnnkit.tasks.lm import load_lm
    model, vocab = load_lm(lm_run)
    x = torch.tensor([vocab.encode(TEXT)])
    with recording(model.rnn) as records:
        logits, _ = model(x)
    assert len(records) == 1 and records[0].h.shape == (2, 1, len(TEXT), 16)
    assert torch.allclose(logits, model(x)[0])          # the model ran unchanged
    assert model.rnn.options.return_sequences == "last" and len(model.rnn(model.embed(x))) == 2
    with pytest.raises(ValueError, match="full length"):
        with recording(model.rnn):
            model.rnn(torch.zeros(2, 3, 16), lengths=torch.tensor([3, 2]))
    assert model.rnn.options.return_sequences == "last"


def test_lm_generation_stream_and_beam(lm_run):
    with Served(lm_run) as s:
        items, text = s.events("prime=But&length=12&temperature=0.9&seed=7&top_k=5")
        assert len(items) == 13 and items[-1] == {"done": "12 tokens"}
        assert all(0 < i["p"] <= 1 and len(i["token"]) == 1 for i in items[:-1])
        again, _ = s.events("prime=But&length=12&temperature=0.9&seed=7&top_k=5")
        assert again == items                              # a seed repeats the sample
        greedy, _ = s.events("prime=But&length=6&temperature=0")
        status, beams = s.ask("/api/beam", {"prime": "But", "beam": 1, "length": 6})
        assert "".join(i["token"] for i in greedy[:-1]) == beams["beams"][0]["text"]
        status, beams = s.ask("/api/beam", {"prime": "But", "beam": 4, "length": 8})
        scores = [b["logp"] for b in beams["beams"]]
        assert status == 200 and len(scores) == 4 and scores == sorted(scores, reverse=True)
        empty, _ = s.events("prime=&length=3")             # an empty prime starts at a line break
        assert len(empty) == 4


def test_training_curves_follow_a_live_run(lm_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(lm_run, run)
    with Served(run) as s:
        status, t = s.ask("/api/training")
        assert status == 200 and [r["step"] for r in t["evals"]] == [3, 6]
        # (log every 2, evaluations at 3 and 6: the steps before each evaluation get a row)
        assert [r["step"] for r in t["train"]] == [2, 3, 4, 6] and t["finished"]
        assert t["images"] == ["loss.png"] and t["gradients"] is None
        status, same = s.ask(f"/api/training?version={t['version']}")
        assert same == {"unchanged": True, "version": t["version"]}
        with open(run / "metrics.jsonl", "a") as f:     # the run trains on: a new evaluation, and
            f.write(json.dumps({**t["evals"][-1], "step": 9, "val_loss": float("nan")}) + "\n")
            f.write('{"step": 12, "val_')               # a line being written
        status, t2 = s.ask(f"/api/training?version={t['version']}")
        assert [r["step"] for r in t2["evals"]] == [3, 6, 9] and t2["evals"][-1]["val_loss"] is None
        assert not t2["finished"]
        row = {"step": 6, "grad_norm": 0.1, "skipped_steps": 0,   # GradientTelemetry's lines
               "layers": {"rnn.l0": {"h": [0.5, 0.25, 0.125], "decay_h": 0.5}}}
        (run / "gradients.jsonl").write_text(json.dumps({**row, "step": 3}) + "\n" + json.dumps(row) + "\n")
        status, t3 = s.ask(f"/api/training?version={t2['version']}")
        assert t3["gradients"] == row and [d["rnn.l0 h"] for d in t3["decay"]] == [0.5, 0.5]
        status, png = s.ask("/api/image?name=loss.png", raw=True)
        assert status == 200 and png.startswith(b"\x89PNG")
        # a better best.pt: the next request sees the new model
        ckpt = torch.load(run / "best.pt", weights_only=True)
        ckpt["trainer"]["step"] = 9
        save_checkpoint(run / "best.pt", {k: v for k, v in ckpt.items() if k not in ("format", "version", "digest")})
        assert s.ask("/api/run")[1]["step"] == 9


def test_runs_under_a_folder(lm_run, tmp_path):
    for name in ("a", "b/deeper"):
        shutil.copytree(lm_run, tmp_path / name)
    (tmp_path / "waiting").mkdir()
    (tmp_path / "waiting" / "train.jsonl").write_text('{"step": 1, "train_loss": 3.0}\n')
    with Served(tmp_path) as s:
        status, runs = s.ask("/api/runs")
        assert [r["run"] for r in runs["runs"]] == ["a", "b/deeper", "waiting"]
        assert s.ask("/api/run?run=b/deeper")[1]["kind"] == "lm"
        status, body = s.ask("/api/run?run=waiting")       # no checkpoint yet: curves only
        assert status == 409 and "no checkpoint yet" in body["error"]
        assert s.ask("/api/training?run=waiting")[1]["train"][0]["train_loss"] == 3.0
        status, body = s.ask("/api/run")
        assert status == 404 and "a, b/deeper, waiting" in body["error"]
    with Served(tmp_path / "a" / "last.pt") as s:          # a checkpoint file: its folder's logs
        assert s.ask("/api/run")[1]["checkpoint"] == "last.pt"
        assert len(s.ask("/api/training")[1]["evals"]) == 2


BAD = [   # (path, POST body or None for GET, status, words of the message)
    ("/api/unit", {"text": TEXT, "quantity": "h", "unit": 16}, 400, "unit must lie in [0, 15]"),
    ("/api/unit", {"text": TEXT, "quantity": "h", "layer": 2}, 400, "layer must lie in [0, 1]"),
    ("/api/unit", {"text": TEXT, "quantity": "h", "direction": 1}, 400, "direction must lie in [0, 0]"),
    ("/api/unit", {"text": TEXT, "quantity": "h", "unit": -1}, 400, "unit must lie in [0, 15]"),
    ("/api/unit", {"text": TEXT, "quantity": "h", "layer": -1}, 400, "layer must lie in [0, 1]"),
    ("/api/unit", {"text": TEXT, "quantity": "zz"}, 400, "quantity must be one of h, c, i, f, g, o"),
    ("/api/unit", {"text": TEXT, "unit": "three"}, 400, "unit must be a whole number"),
    ("/api/text", {"text": "Zebra ~ 9"}, 400, "first 'Z' at character 1"),
    ("/api/text", {"text": "a" * (LIMITS["text"] + 1)}, 413, "at most 2,000"),
    ("/api/text", {"text": ""}, 400, "text is empty"),
    ("/api/text", {}, 400, "missing parameter 'text'"),
    ("/api/text", {"text": 5}, 400, "text must be text"),
    ("/api/text", b"{not json", 400, "not JSON"),
    ("/api/text", [1, 2], 400, "expected a JSON object"),
    ("/api/text", {"text": "x" * (LIMITS["body"] + 1)}, 413, "request body of"),
    ("/api/correlate", {"text": TEXT, "start": 0, "end": len(TEXT)}, 400, "select part of the text"),
    ("/api/beam", {"prime": "But", "beam": 17}, 400, "beam must lie in [1, 16]"),
    ("/api/beam", {"prime": "But", "length": 301}, 400, "length must lie in [1, 300]"),
    ("/api/translate", {"text": "ich"}, 400, "a lm run has no 'translate' view"),
    ("/api/generate?prime=But&length=2001", None, 400, "length must lie in [1, 2000]"),
    ("/api/generate?prime=But&temperature=nan", None, 400, "temperature must be a finite number"),
    ("/api/generate?prime=But&top_p=1.5", None, 400, "top_p must lie in"),
    ("/api/generate?prime=%7E%7E", None, 400, "prime: 1 token(s) the model has never seen"),
    ("/api/text?text=abc", None, 405, "takes POST"),
    ("/api/run?run=nowhere", None, 404, "no run 'nowhere'"),
    ("/api/image?name=../best.pt", None, 404, "no image '../best.pt'"),
    ("/static/../../best.pt", None, 404, "no page"),
    ("/nothing", None, 404, "no page"),
    ("/api/text", {"run": ["lm"], "text": "a"}, 400, "run must be a run's name (text), got list"),
    ("/api/text", b"[" * 20000 + b"]" * 20000, 400, "nests too deep"),
    ("/api/text", b'{"text": "good \\ud800 film"}', 400, "lone surrogate"),
    ("/api/nosuch", None, 404, "no page /api/nosuch"),
    ("/api/image?name=" + "a" * 201, None, 413, "name has 201 characters; at most 200"),
]


@pytest.mark.parametrize("path, body, status, words", BAD, ids=[f"{b[0]}-{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_bad_requests_are_4xx_with_a_message(lm_run, path, body, status, words):
    with Served(lm_run) as s:
        got, answer = s.ask(path, body)
        assert got == status and words in answer["error"], answer


def test_requests_for_another_host_are_refused(lm_run):
    with Served(lm_run) as s:
        status, body = s.ask("/api/runs", headers={"Host": "attacker.example:8000"})
        assert status == 403 and "localhost only" in body["error"]
        assert s.ask("/api/runs", headers={"Host": "localhost"})[0] == 200


def test_refused_runs_say_why(lm_run, tmp_path):
    ckpt = torch.load(lm_run / "best.pt", weights_only=True)
    plain = {k: v for k, v in ckpt.items() if k not in ("format", "version", "digest")}
    save_checkpoint(tmp_path / "alien" / "best.pt", {**plain, "kind": "telepathy"})
    newer = tmp_path / "newer"
    newer.mkdir()
    torch.save({**ckpt, "version": 99}, newer / "best.pt")
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "best.pt").write_bytes(b"not a checkpoint")
    save_checkpoint(tmp_path / "older" / "best.pt", {**plain, "model_config": {"cells": "lstm"}})
    with Served(tmp_path) as s:
        for run, words in [("alien", "a run of kind 'telepathy', which this view does not know"),
                           ("newer", "checkpoint version 99"),
                           ("damaged", "not a readable rnnkit checkpoint"),
                           ("older", "does not fit this rnnkit")]:
            status, body = s.ask(f"/api/run?run={run}")
            assert status == 422 and words in body["error"], (run, body)
            status, body = s.ask("/api/text", {"run": run, "text": "a"})
            assert status == 422 and words in body["error"]


def test_a_reachable_address_is_refused_unless_asked(lm_run, capsys):
    for host in ("127.0.0.1", "localhost", "::1"):
        assert check_host(host)
    with pytest.raises(ConfigError, match="--allow-remote"):
        check_host("0.0.0.0")
    assert check_host("0.0.0.0", allow_remote=True) is False
    with pytest.raises(ConfigError, match="other machines"):
        ViewServer(lm_run, host="0.0.0.0", port=0)
    assert main(["view", str(lm_run), "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "add --allow-remote" in capsys.readouterr().err
    assert main(["view", str(lm_run / "nowhere")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_view_command_serves_until_interrupted(lm_run, monkeypatch, capsys):
    real, seen = ViewServer.serve_forever, []

    def serve_then_interrupt(self, poll_interval=0.5):
        t = threading.Thread(target=real, args=(self, 0.05))
        t.start()
        try:
            with urllib.request.urlopen(self.url + "api/run", timeout=60) as r:
                seen.append(json.loads(r.read()))
        finally:
            self.shutdown()
            t.join()
        raise KeyboardInterrupt

    monkeypatch.setattr(ViewServer, "serve_forever", serve_then_interrupt)
    assert main(["view", str(lm_run), "--port", "0"]) == 0
    assert seen[0]["kind"] == "lm"
    captured = capsys.readouterr()
    assert captured.out.startswith(f"rnnkit view: {lm_run} at http://127.0.0.1:")
    assert "stopped" in captured.err


def test_view_ends_on_sigterm_as_every_command_does(lm_run, monkeypatch, capsys):
    """SIGTERM was taken for Ctrl-C: "stopped" and exit 0."""
    from rnnkit.cli.main import Terminated

    def terminated(self, poll_interval=0.5):
        raise Terminated
    monkeypatch.setattr(ViewServer, "serve_forever", terminated)
    assert main(["view", str(lm_run), "--port", "0"]) == 143
    assert capsys.readouterr().err.strip().splitlines() == ["rnnkit: terminated (SIGTERM)"]


def test_the_protocols_edges_are_answered_in_json(lm_run):
    """A negative Content-Length read the body until the client closed (a hung request, or a
    body past the limit held in memory); a chunked body was ignored; PUT, DELETE, OPTIONS the
    standard library's HTML 501."""
    import http.client
    with Served(lm_run) as s:
        host, port = s.server.server_address[:2]
        for method, headers, status, words in [
                ("POST", {"Content-Length": "-1"}, 400, "Content-Length must be 0 or more"),
                ("POST", {"Transfer-Encoding": "chunked"}, 411, "not chunked"),
                ("PUT", {}, 405, "the view takes GET"), ("DELETE", {}, 405, "the view takes GET"),
                ("OPTIONS", {}, 405, "the view takes GET")]:
            c = http.client.HTTPConnection(host, port, timeout=10)
            c.putrequest(method, "/api/text", skip_accept_encoding=True)
            for k, v in headers.items():
                c.putheader(k, v)
            c.endheaders()
            r = c.getresponse()
            assert r.status == status and words in json.loads(r.read())["error"], method
            c.close()
        c = http.client.HTTPConnection(host, port, timeout=10)
        c.request("HEAD", "/")
        assert c.getresponse().status == 405


def test_the_address_it_was_told_to_serve_on_is_local(lm_run):
    """--host 127.0.0.2 started, then refused every request as not addressed to localhost."""
    s = Served(lm_run, host="127.0.0.2")
    with s:
        port = s.server.server_address[1]
        assert s.ask("/api/runs", headers={"Host": f"127.0.0.2:{port}"})[0] == 200
        assert s.ask("/api/runs", headers={"Host": "evil.example"})[0] == 403


def test_a_deleted_run_and_bad_log_lines(lm_run, tmp_path):
    """A run deleted while served said 'no checkpoint yet' (409); a telemetry line whose
    layers are a list was an internal error; a FIFO named train.jsonl held the request
    forever; a PNG that fails to read (EIO, another user's) was a 500 "internal error"."""
    run = tmp_path / "runs" / "lm"
    shutil.copytree(lm_run, run)
    (run / "train.jsonl").unlink()
    os.mkfifo(run / "train.jsonl")
    (run / "loss.png").unlink(missing_ok=True)
    (run / "loss.png").symlink_to("/proc/self/mem")       # a file whose read fails (EIO)
    with Served(tmp_path / "runs") as s:
        assert s.ask("/api/text", {"run": "lm", "text": "But"})[0] == 200
        with open(run / "gradients.jsonl", "a", encoding="utf-8") as f:
            f.write('{"step": 1, "layers": [1]}\n[1, 2]\n')
        status, body = s.ask("/api/training?run=lm")
        assert status == 200 and body["train"] == [] and body["evals"], body
        status, body = s.ask("/api/image?run=lm&name=loss.png")
        assert status == 409 and "lm: loss.png cannot be read" in body["error"]
        shutil.rmtree(run)
        status, body = s.ask("/api/text", {"run": "lm", "text": "But"})
        assert status == 404 and "no run 'lm'" in body["error"]


def test_a_damaged_checkpoint_is_not_met_with_advice_to_load_it_unsafely(tmp_path):
    """torch's message for a file weights_only cannot read suggests weights_only=False; rnnkit
    passed that on. It says what was wrong instead."""
    from rnnkit.train.checkpoint import CheckpointError, load_checkpoint
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"garbage bytes here")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(bad)
    assert "weights_only" not in str(e.value) and "Unsupported operand" in str(e.value)


def test_an_address_it_cannot_serve_on_is_one_line(lm_run, capsys):
    """An address that is not this machine's was the bare 'Cannot assign requested address'
    (exit 1), naming neither host nor port; a port in use names both."""
    assert main(["view", str(lm_run), "--host", "10.255.255.1", "--allow-remote",
                 "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: cannot serve on 10.255.255.1 port 0: ")
    with Served(lm_run) as s:
        port = s.server.server_address[1]
        assert main(["view", str(lm_run), "--port", str(port)]) == 2
        assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err
