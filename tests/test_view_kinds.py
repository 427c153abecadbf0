"""``rnnkit view`` on each run kind besides the language model (tests/test_view.py): what each
JSON endpoint returns for a tiny classifier, tagger, seq2seq model, forecaster and conditional
generator trained through the CLI, and their own bad requests."""
import pytest
import torch

from rnnkit.cli.main import main

from seq2seq_fixtures import train_run
from task_fixtures import write_labelled, write_series, write_tagged
from test_view import FAST, Served


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run of each kind under one folder, served by one view."""
    root = tmp_path_factory.mktemp("view-kinds")
    data = tmp_path_factory.mktemp("view-data")
    assert main(["train", "classify", "--data", str(write_labelled(data)), "--out", str(root / "classify"),
                 "--hidden", "8", "--embed", "8", "--batch", "8", "--pooling", "attention", *FAST]) == 0
    assert main(["train", "tag", "--data", str(write_tagged(data)), "--out", str(root / "tag"),
                 "--hidden", "8", "--embed", "8", "--char-embed", "4", "--char-hidden", "4",
                 "--min-count", "1", "--cell", "gru", *FAST]) == 0
    assert main(["train", "forecast", "--data", str(write_series(data)), "--out", str(root / "forecast"),
                 "--window", "24", "--horizon", "6", "--season", "12", "--layers", "1",
                 "--hidden", "8", *FAST]) == 0
    for kind in ("seq2seq", "cond"):
        train_run(data, kind, 6).rename(root / kind)
    with Served(root) as s:
        s.root = root
        yield s


def test_every_kind_is_listed_with_its_actions(runs):
    status, body = runs.ask("/api/run")                  # five runs, none named
    assert status == 404 and "holds 5 runs: name one with run=" in body["error"]
    listed = {r["run"] for r in runs.ask("/api/runs")[1]["runs"]}
    assert listed == {"classify", "tag", "forecast", "seq2seq", "cond"}
    actions = {k: set(runs.ask(f"/api/run?run={k}")[1]["actions"]) for k in listed}
    assert actions == {"classify": {"text", "unit", "correlate"}, "tag": {"text", "unit", "correlate"},
                       "seq2seq": {"text", "unit", "correlate", "translate"},
                       "forecast": {"forecast"}, "cond": {"samples"}}


def test_classifier_probabilities_as_the_text_grows(runs):
    status, info = runs.ask("/api/run?run=classify")
    assert info["labels"] == ["negative", "positive"] and info["pooling"] == "attention"
    assert info["layers"]["directions"] == 2
    text = "a warm and fine zebra film"
    status, r = runs.ask("/api/text", {"run": "classify", "text": text})
    assert status == 200 and r["tokens"] == text.split()
    assert r["unknown"] == [4]                                   # zebra: <unk>
    assert r["label"] in r["labels"] and sum(r["probabilities"]) == pytest.approx(1, abs=1e-3)
    assert r["growing"]["ends"] == [1, 2, 3, 4, 5, 6]
    assert r["growing"]["probabilities"][-1] == pytest.approx(r["probabilities"], abs=1e-3)
    assert len(r["attention"]) == 6 and sum(r["attention"]) == pytest.approx(1, abs=1e-3)
    status, back = runs.ask("/api/unit", {"run": "classify", "text": text, "direction": 1, "unit": 7})
    assert status == 200 and len(back["values"]) == 6
    status, body = runs.ask("/api/unit", {"run": "classify", "text": text, "direction": 2})
    assert status == 400 and "direction must lie in [0, 1]" in body["error"]
    status, body = runs.ask("/api/text", {"run": "classify", "text": "   "})
    assert status == 400 and "no tokens" in body["error"]


def test_tagger_tags_each_token(runs):
    text = "the small dog ran fast"
    status, r = runs.ask("/api/text", {"run": "tag", "text": text})
    assert status == 200 and r["tokens"] == text.split() and len(r["tags"]) == 5
    assert set(r["tags"]) <= set(runs.ask("/api/run?run=tag")[1]["tags"])
    assert [w for w, _ in r["words"]] == text.split()
    assert all(len(row) == 3 for row in r["tag_probabilities"])
    # a chain's per-token probabilities are its marginals (a softmax of the emissions put
    # another tag first than the one shown on 333 of 480 tokens)
    from rnnkit.tasks.tag_trained import Tagger
    tagger = Tagger.load(runs.root / "tag" / "best.pt")
    assert tagger.model.crf is not None
    batch = tagger.encoder([tagger.in_form(text.split())])
    with torch.no_grad():
        E = tagger.model(*batch)                                          # (1, T, K)
    p = tagger.model.crf.marginals(E, torch.ones(E.shape[:2], dtype=torch.bool))[0]
    shown = [q for row in r["tag_probabilities"] for _, q in row]
    assert shown == pytest.approx(p.topk(3, -1).values.flatten().tolist(), abs=1e-4)
    assert [g["gate"] for g in r["saturation"][0]["gates"]] == ["r", "z", "n"]   # a GRU
    status, u = runs.ask("/api/unit", {"run": "tag", "text": text, "quantity": "z", "unit": 2})
    assert status == 200 and u["scale"] == "unit"
    status, body = runs.ask("/api/unit", {"run": "tag", "text": text, "quantity": "c"})
    assert status == 400 and "quantity must be one of h, r, z, n" in body["error"]


def test_seq2seq_outputs_and_their_attention(runs):
    status, r = runs.ask("/api/translate", {"run": "seq2seq", "text": "ich sehe den hund", "beam": 3})
    assert status == 200 and r["attends"] and r["source"] == list("ich sehe den hund")
    assert [o["name"] for o in r["outputs"]] == ["greedy", "beam 1", "beam 2", "beam 3"]
    for o in r["outputs"]:
        w = o["attention"]["weights"]
        assert len(w) == len(o["attention"]["target"]) and all(len(row) == 17 for row in w)
        assert all(sum(row) == pytest.approx(1, abs=0.02) for row in w)
        # a </s> row only where the output ended with one: one cut at the length limit (2 x 17
        # + 10 tokens) had a row for a step its model never took
        cut = len(o["text"]) == 44
        assert o["attention"]["target"][-1] != "</s>" if cut else o["attention"]["target"][-1] == "</s>"
        assert len(o["attention"]["target"]) == len(o["text"]) + (not cut)
    assert any(len(o["text"]) == 44 for o in r["outputs"])
    from rnnkit.data.pairs import EOS_ID, decode
    from rnnkit.tasks.seq2seq import load_seq2seq
    from rnnkit.tasks.translation import Translator
    translator = Translator(*load_seq2seq(runs.root / "seq2seq")[:3])
    short = r["outputs"][0]["text"][:3]                       # three of its target tokens
    _, tgt, w = translator.attention("ich sehe den hund", short)
    assert tgt == [*short, "</s>"] and w.shape == (4, 17)   # an output that ended
    # the ids decoding made, read as they are: a word model's output re-encoded from its text
    # (words without a space between them joined, runs of spaces one token) was counted short
    # of the limit and given a </s> row it never read
    itos = translator.tgt_vocab.itos
    _, tgt, w = translator.attention("ich sehe den hund", [5] * 44)
    assert tgt == [itos[5]] * 44 and w.shape == (44, 17)
    _, tgt, w = translator.attention("ich sehe den hund", [5, 5, EOS_ID])
    assert tgt == [itos[5]] * 2 + ["</s>"] and w.shape == (3, 17)
    greedy = translator.greedy_ids(["ich sehe den hund"])[0]
    assert decode(translator.tgt_vocab, greedy) == translator.greedy(["ich sehe den hund"])[0]
    status, r = runs.ask("/api/translate", {"run": "seq2seq", "text": "ich sehe Zebra", "beam": 1})
    assert status == 200 and "read as <unk>" in r["notes"][0]
    status, enc = runs.ask("/api/text", {"run": "seq2seq", "text": "ich sehe"})
    assert status == 200 and enc["tokens"] == list("ich sehe")
    status, enc = runs.ask("/api/text", {"run": "seq2seq", "text": "  ich sehe\n"})
    status, unit = runs.ask("/api/unit", {"run": "seq2seq", "text": "  ich sehe\n"})
    assert enc["tokens"] == list("ich sehe") and len(unit["values"]) == 8   # the ends' white-
    status, body = runs.ask("/api/translate", {"run": "seq2seq", "text": "x" * 201})  # space
    assert status == 400 and "at most max_len=200" in body["error"]
    status, body = runs.ask("/api/translate", {"run": "seq2seq", "text": "ich", "beam": 0})
    assert status == 400 and "beam must lie in [1, 16]" in body["error"]


def test_forecast_history_forecast_and_truth(runs):
    status, info = runs.ask("/api/run?run=forecast")
    assert info["names"] == ["value"] and info["horizon"] == 6 and info["length"] == 160
    status, r = runs.ask("/api/forecast", {"run": "forecast", "steps": 10})
    assert status == 200 and r["origin"] == info["split"][1]
    assert len(r["forecast"][0]) == 10 and len(r["truth"][0]) == 10
    assert len(r["history"][0]) == r["origin"] - r["start"] and len(r["labels"]) == r["origin"] - r["start"] + 10
    assert r["series"]["index"] == list(range(160))
    status, r = runs.ask("/api/forecast", {"run": "forecast", "steps": 3, "from_end": True})
    assert r["origin"] == 160 and r["truth"] == [[]] and r["labels"][-3:] == ["+1", "+2", "+3"]
    status, body = runs.ask("/api/forecast", {"run": "forecast", "steps": 1001})
    assert status == 400 and "steps must lie in [1, 1000]" in body["error"]
    (i80, i95), forecast = r["intervals"], r["forecast"][0]
    assert i80["level"] == 80 and i95["level"] == 95
    for i in range(3):   # the 95% interval holds the 80% one, which holds the forecast
        assert i95["lo"][0][i] <= i80["lo"][0][i] <= forecast[i] <= i80["hi"][0][i] <= i95["hi"][0][i]


def test_conditional_generator_samples(runs):
    status, info = runs.ask("/api/run?run=cond")
    assert set(info["labels"]) == {"Italy", "Japan"}
    status, r = runs.ask("/api/samples", {"run": "cond", "condition": "Italy", "n": 4, "seed": 3})
    assert status == 200 and len(r["samples"]) == 4
    again = runs.ask("/api/samples", {"run": "cond", "condition": "Italy", "n": 4, "seed": 3})[1]
    assert again["samples"] == r["samples"]
    status, r = runs.ask("/api/samples", {"run": "cond", "condition": "Japan", "n": 3, "beam": True})
    assert status == 200 and len(r["samples"]) == 3 and r["beam"]
    status, body = runs.ask("/api/samples", {"run": "cond", "condition": "Atlantis"})
    assert status == 400 and "unknown condition 'Atlantis'" in body["error"]
    status, body = runs.ask("/api/samples", {"run": "cond", "condition": "Italy", "n": 51})
    assert status == 400 and "n must lie in [1, 50]" in body["error"]


def test_a_burst_of_requests_is_answered_whole(runs):
    """A burst of requests while handlers were busy overflowed socketserver's queue of 5
    connections waiting to be accepted: 6 to 10 of 48 were reset by the server."""
    from concurrent.futures import ThreadPoolExecutor
    body = {"run": "classify", "text": "a warm and fine film"}
    with ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(lambda _: runs.ask("/api/text", body)[0], range(48)))
    assert statuses == [200] * 48
