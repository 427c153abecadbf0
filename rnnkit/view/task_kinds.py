"""The views of the other run kinds: seq2seq (its encoder's units over the source, the greedy and
beam outputs and the attention matrix of each), the forecaster (the series, the forecast and the
held-out truth) and the conditional generator (sequences sampled or beam-searched for a label).
Shapes: S source length, T output length, F variables.
"""
import numpy as np

from rnnkit.config import MAX_SEED
from rnnkit.view.base import Reading, TextView, View, evenly, finite
from rnnkit.view.params import LIMITS


class Seq2SeqView(TextView):
    kind = "seq2seq"
    ACTIONS = {**TextView.ACTIONS, "translate": "translate"}

    def __init__(self, model, src_vocab, tgt_vocab):
        super().__init__()
        from rnnkit.tasks.translation import Translator
        self.model, self.layer = model, model.encoder
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.notes_of_request = []
        self.translator = Translator(model, src_vocab, tgt_vocab, warn=self.notes_of_request.append)

    @classmethod
    def load(cls, path, checkpoint):
        from rnnkit.tasks.seq2seq import load_seq2seq
        return cls(*load_seq2seq(path)[:3])

    def info(self):
        c = self.model.config
        return {**super().info(), "attention": c.attention, "max_len": c.max_len,
                "vocab": {"source": len(self.src_vocab), "target": len(self.tgt_vocab),
                          "kind": self.src_vocab.kind}}

    def source(self, text):
        """(source ids, notes on unknown tokens); DataError (a 400) when empty or too long."""
        self.notes_of_request.clear()
        ids = self.translator.source_ids(text)
        return ids, list(self.notes_of_request)

    def read(self, text):
        from rnnkit.data.pairs import UNK_ID, pad
        ids, notes = self.source(text)
        src, lengths = pad([ids])
        _, trace = self.traced(lambda: self.model.encode(src, lengths))
        return Reading(self.src_vocab.tokenize(text.strip()), trace, {},   # as read
                       [t for t, i in enumerate(ids) if i == UNK_ID], notes)

    def translate(self, p):
        from rnnkit.data.pairs import BOS_ID, EOS_ID, decode, pad
        from rnnkit.decode import beam_search
        text = p.text("text")
        K = p.int("beam", 1, LIMITS["beam"], 5)
        alpha = p.float("length_penalty", 0, 5, 1.0)
        with self.lock:
            ids, notes = self.source(text)
            greedy = self.translator.greedy_ids([text])[0]   # (its rows read its own tokens)
            outputs = [{"name": "greedy", "text": decode(self.tgt_vocab, greedy), "score": None,
                        "ids": greedy}]
            if K > 1:
                src, lengths = pad([ids])
                hyps = beam_search(self.model, [BOS_ID], K, self.translator.output_limit(lengths),
                                   EOS_ID, alpha, state=self.model.encode(src, lengths), n_best=K)
                outputs += [{"name": f"beam {i + 1}", "text": decode(self.tgt_vocab, h),
                             "score": round(s, 4), "ids": h} for i, (h, s) in enumerate(hyps)]
            source = [self.src_vocab.itos[i] for i in ids]
            for out in outputs:
                out["attention"] = self.attention(text, out.pop("ids"))
        return {"source": source, "outputs": outputs, "notes": notes,
                "attends": self.model.attn is not None}

    def attention(self, text, output):
        """{"target": tokens, "weights": (T, S) rows} of the model reading its own output (its
        token ids, or its text)."""
        if self.model.attn is None:
            return None
        _, tgt, w = self.translator.attention(text, output)
        return {"target": tgt, "weights": [finite(row, 3) for row in w.tolist()]}


class ForecastView(View):
    kind = "forecast"
    ACTIONS = {"forecast": "forecast"}

    def __init__(self, forecast):
        super().__init__()
        self.f = forecast

    @classmethod
    def load(cls, path, checkpoint):
        from rnnkit.tasks.forecast_trained import Forecast
        return cls(Forecast.load(path))

    def info(self):
        f, c = self.f, self.f.model.config
        return {**super().info(), "names": list(f.names), "length": len(f.y),
                "split": [int(s) for s in f.split], "window": f.window, "horizon": c.horizon,
                "mode": c.mode}

    def forecast(self, p):
        """The forecast of ``steps`` after the held-out tail's start (or after the end:
        ``from_end``), the history before it, the truth after it, and the whole series thinned."""
        f = self.f
        steps = p.int("steps", 1, LIMITS["forecast"], max(24, f.model.config.horizon))
        origin = len(f.y) if p.flag("from_end") else int(f.split[1])
        from rnnkit.tasks.forecast_scores import LEVELS
        if not f.window <= origin <= len(f.y):   # too short a stored series: the one-line error
            f.forecast(steps, origin)
        with self.lock:   # the forecast, and the 80% and 95% intervals from the errors before it
            pred, lo, hi = f.intervals(f.y, [origin], steps)
        pred, lo, hi = pred[0], lo[:, 0], hi[:, 0]                     # (steps, F), (L, steps, F)
        start = max(0, origin - max(4 * steps, f.window))
        label = lambda t: f.labels[t] if t < len(f.labels) else f"+{t - len(f.y) + 1}"  # noqa: E731
        whole, F = evenly(len(f.y), LIMITS["points"]), len(f.names)
        return {"names": list(f.names), "origin": origin, "start": start,
                "labels": [label(t) for t in range(start, origin + steps)],
                "history": columns(f.y[start:origin], F), "forecast": columns(pred, F),
                "intervals": [{"level": level, "lo": columns(lo[i], F), "hi": columns(hi[i], F)}
                              for i, level in enumerate(LEVELS)],
                "truth": columns(f.y[origin:origin + steps], F), "split": [int(s) for s in f.split],
                "series": {"index": whole, "values": columns(f.y[whole], F)}}


def columns(a, F):
    """(N, F) array -> F lists of N JSON-safe floats (N may be 0: no truth past the end)."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), F)
    return [finite(a[:, k]) for k in range(F)]


class CondView(View):
    kind = "cond"
    ACTIONS = {"samples": "samples"}

    def __init__(self, model, vocab, conditions):
        super().__init__()
        self.model, self.vocab, self.conditions = model, vocab, conditions

    @classmethod
    def load(cls, path, checkpoint):
        from rnnkit.tasks.cond import load_cond
        return cls(*load_cond(path))

    def info(self):
        c = self.conditions
        return {**super().info(), "labels": list(c.labels or []), "features": c.features,
                "max_len": self.model.config.max_len}

    def samples(self, p):
        from rnnkit.tasks.cond import generate, most_likely
        source = p.text("condition", limit=1000)
        n = p.int("n", 1, LIMITS["samples"], 10)
        beam = p.flag("beam")
        temperature = p.float("temperature", 0, 10, 0.8)
        k = p.optional_int("top_k", 1, len(self.vocab))
        top_p = p.optional_float("top_p", 1e-6, 1)
        seed = p.optional_int("seed", 0, MAX_SEED)
        self.conditions.encode(source)   # an unknown label: DataError, a 400 naming the known ones
        with self.lock:
            if beam:
                seqs = most_likely(self.model, self.vocab, self.conditions, source, n, max(n, 5))
            else:
                seqs = generate(self.model, self.vocab, self.conditions, source, n, temperature, k,
                                top_p, seed)
        return {"condition": source, "samples": seqs, "beam": beam}

