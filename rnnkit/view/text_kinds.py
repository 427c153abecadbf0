"""The views of models that read text: the language model (next-token probabilities, live
sampling, beam search), the classifier (class probabilities as the text grows) and the tagger
(a tag per token). Each is built from the run's checkpoint through the task's own loader.
Shapes: T time, V vocabulary, K classes or tags.
"""
import torch

from rnnkit.config import MAX_SEED
from rnnkit.data.pairs import unknown_tokens
from rnnkit.data.vocab import EOS
from rnnkit.decode import beam_search, pick, prime
from rnnkit.view.base import Reading, TextView, evenly, top_k
from rnnkit.view.params import LIMITS, RequestError

NEXT = 10   # next-token candidates shown per position


class LMView(TextView):
    kind = "lm"
    ACTIONS = {**TextView.ACTIONS, "generate": "generate", "beam": "beam"}

    def __init__(self, model, vocab):
        super().__init__()
        self.model, self.vocab, self.layer = model, vocab, model.rnn
        self.separator = " " if vocab.kind == "ptb" else ""

    @classmethod
    def load(cls, path, checkpoint):
        from rnnkit.tasks.lm import load_lm
        return cls(*load_lm(path, checkpoint))

    def info(self):
        v = self.vocab
        return {**super().info(), "vocab": {"size": len(v), "kind": v.kind,
                                            "unk": v.unk is not None}}

    def encode(self, text, what="text"):
        """Token ids of ``text``; tokens outside the vocabulary (the model has no <unk>) are a
        RequestError naming them and where the first one is. A prime is a prefix
        (:meth:`rnnkit.data.Vocab.encode`)."""
        try:
            return self.vocab.encode(text, prefix=what == "prime")
        except KeyError:
            missing = unknown_tokens(self.vocab, text)
            at = text.find(missing[0]) if missing else -1
            raise RequestError(f"{what}: {len(missing)} token(s) the model has never seen, first "
                               f"{missing[0]!r} at character {at + 1}: {missing[:10]!r}; its "
                               f"vocabulary holds {len(self.vocab):,} {self.vocab.kind} tokens "
                               f"and no <unk>") from None

    def read(self, text):
        ids = self.encode(text)
        (logits, _), trace = self.traced(lambda: self.model(torch.tensor([ids])))   # (1, T, V)
        probs = logits[0].float().softmax(-1)                                # (T, V)
        given = torch.tensor(ids)
        seen = probs[:-1].gather(1, given[1:, None])[:, 0]                   # (T-1,) p(x_t | x_<t)
        shown = self.vocab.tokenize(text)
        unknown = [t for t, i in enumerate(ids) if i == self.vocab.unk]
        nats = float(-seen.clamp_min(1e-30).log().mean()) if len(ids) > 1 else None
        return Reading(shown, trace, {
            "next": top_k(probs, self.vocab.itos, NEXT),
            "p_token": [None] + [round(float(q), 4) for q in seen],
            "loss": nats}, unknown)

    # ------------------------------------------------------------ live generation
    def generate(self, p):
        """A stream of {"token", "p"} (p: the model's probability of the token, temperature 1),
        then {"done": reason}. Parameters are checked before the first token; an empty prime
        starts from :meth:`start_id`."""
        text = p.text("prime", empty=True)
        length = p.int("length", 1, LIMITS["generate"], 200)
        temperature = p.float("temperature", 0, 10, 0.8)
        k = p.optional_int("top_k", 1, len(self.vocab))
        top_p = p.optional_float("top_p", 1e-6, 1)
        seed = p.optional_int("seed", 0, MAX_SEED)
        ids = self.encode(text, "prime") if text else [self.start_id()]
        return self._stream(ids, length, temperature, k, top_p, seed)

    def _stream(self, ids, length, temperature, k, top_p, seed):
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        with self.lock, torch.no_grad():
            logits, state = prime(self.model, ids)                           # (1, V)
        for _ in range(length):
            with self.lock, torch.no_grad():   # a token at a time: other requests interleave
                x = pick(logits, temperature, k, top_p, gen)                 # (1,)
                q = float(logits.float().softmax(-1)[0, x[0]])
                logits, state = self.model.step(x, state)
            token = self.vocab.itos[int(x[0])]
            yield {"token": "\n" if token == EOS else token, "p": round(q, 4)}
        yield {"done": f"{length} tokens"}

    def start_id(self):
        """What an empty prime starts from: a line break (char models), the end of a line (word
        models), or else the first token of the vocabulary (the most frequent)."""
        stoi = self.vocab.stoi
        return stoi.get("\n", stoi.get(EOS, 0))

    def beam(self, p):
        text = p.text("prime")
        K = p.int("beam", 1, LIMITS["beam"], 5)
        length = p.int("length", 1, LIMITS["beam_length"], 60)
        hyps = beam_search(self.model, self.encode(text, "prime"), K, length, length_penalty=0.0,
                           n_best=K)
        return {"beams": [{"text": self.vocab.decode(ids), "logp": round(s, 3)} for ids, s in hyps]}


class ClassifyView(TextView):
    kind = "classify"

    def __init__(self, classifier):
        super().__init__()
        self.clf, self.model = classifier, classifier.model
        self.layer = classifier.model.rnn
        self.separator = " " if classifier.tokens == "word" else ""

    @classmethod
    def load(cls, path, checkpoint):
        from rnnkit.tasks.classify_trained import Classifier
        return cls(Classifier.load(path))

    def info(self):
        return {**super().info(), "labels": list(self.clf.labels),
                "pooling": self.model.config.pooling, "max_len": self.clf.encoder.max_len,
                "rnn_len": self.model.config.rnn_len}

    def read(self, text):
        from rnnkit.tasks.classify_text import batch
        enc = self.clf.encoder
        tokens = enc.split(text)
        if not tokens:
            raise RequestError("the text holds no tokens the classifier reads (only spaces?)")
        notes = []
        if enc.max_len and len(tokens) > enc.max_len:
            notes.append(f"the classifier reads the first {enc.max_len} tokens; the other "
                         f"{len(tokens) - enc.max_len} are not shown")
        R = self.model.config.rnn_len
        if R and len(tokens) > R:
            notes.append(f"the recurrent part reads the first {R} tokens; the bag of n-grams "
                         f"reads {min(len(tokens), enc.max_len or len(tokens))}")
        ids, grams = enc(text)
        logits, trace = self.traced(lambda: self.model(*batch([(ids, grams)])))   # (1, K)
        attention = getattr(self.model.attn, "last_weights", None) if self.model.attn else None
        probs = self.prefix_probabilities(ids, grams)
        final = logits[0].softmax(-1).tolist()
        unk = self.clf.encoder.vocab.unk
        return Reading(tokens[:len(ids)], trace, {
            "labels": list(self.clf.labels),
            "probabilities": [round(q, 4) for q in final],
            "label": self.clf.labels[max(range(len(final)), key=final.__getitem__)],
            "growing": probs,
            "attention": None if attention is None else [round(a, 4) for a in attention[0].tolist()],
        }, [t for t, i in enumerate(ids) if i == unk], notes)

    def prefix_probabilities(self, ids, grams):
        """The class probabilities after each prefix (at most LIMITS["prefixes"] of them, evenly
        spaced): {"ends": [prefix lengths], "probabilities": [[p per class], ...]}."""
        from rnnkit.tasks.classify_text import batch
        ends = [e + 1 for e in evenly(len(ids), LIMITS["prefixes"])]
        out = []
        for k in range(0, len(ends), 64):
            part = [(ids[:e], None if grams is None else grams[:e]) for e in ends[k:k + 64]]
            out += self.model(*batch(part)).softmax(-1).tolist()             # (B, K)
        return {"ends": ends, "probabilities": [[round(q, 4) for q in row] for row in out]}


class TagView(TextView):
    kind = "tag"

    def __init__(self, tagger):
        super().__init__()
        self.tagger, self.model, self.layer = tagger, tagger.model, tagger.model.rnn
        self.separator = "" if tagger.char_tokens else " "

    @classmethod
    def load(cls, path, checkpoint):
        from rnnkit.tasks.tag_trained import Tagger
        return cls(Tagger.load(path))

    def info(self):
        return {**super().info(), "tags": list(self.tagger.tags), "crf": self.model.crf is not None}

    def read(self, text):
        tokens = self.tagger.split(text)
        if not tokens:
            raise RequestError("the text holds no tokens to tag (only spaces?)")
        batch = self.tagger.encoder([self.tagger.in_form(tokens)])   # (as tag() reads them)
        x = batch[0]
        scores, trace = self.traced(lambda: self.model(*batch))
        scores = scores[0]                                                   # (T, K)
        tags = self.tagger.tag([tokens])[0]
        crf = self.model.crf   # a chain's tag: its marginals, not its emissions' softmax
        whole = torch.ones(1, len(scores), dtype=torch.bool)                 # (1, T)
        probs = (crf.marginals(scores[None], whole)[0] if crf is not None
                 else scores.softmax(-1))                                    # (T, K)
        unk = self.tagger.encoder.vocab.unk
        return Reading(tokens, trace, {
            "tags": tags, "words": [list(w) for w in self.tagger.words(tokens, tags)],
            "tag_probabilities": top_k(probs, self.tagger.tags, 3)},
            [t for t, i in enumerate(x[0].tolist()) if i == unk])
