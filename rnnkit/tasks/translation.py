"""Translating with a trained Seq2Seq (greedy and beam, through :mod:`rnnkit.decode`), checking
the input at the boundary, and the held-out metrics: corpus BLEU (sacrebleu), character error
rate, sequence accuracy and token error rate (WER over word tokens). Shapes: B batch, S source length, T target length.
"""
import re
import sys

import torch

from rnnkit.data.text_tokens import UNSEGMENTED_CHAR, unsegmented
from rnnkit.data.pairs import BOS_ID, EOS_ID, UNK_ID, decode, encode, pad, unknown_tokens
from rnnkit.data.pairs import UNK as UNK_TEXT
from rnnkit.data.text import DataError, blank
from rnnkit.data.vocab import WORD_FORM, tokenize
from rnnkit.decode import beam_search, beam_search_batch, sample
from rnnkit.tasks import api_inputs
from rnnkit.tasks.metrics import edit_distance, sequence_accuracy, token_error_rate

BEAM_BATCH = 16     # sentences searched together by Translator.beams


class Translator:
    """A model and its vocabularies; ``warn`` receives messages about unknown source tokens."""

    def __init__(self, model, src_vocab, tgt_vocab, warn=None):
        self.model, self.src_vocab, self.tgt_vocab = model.eval(), src_vocab, tgt_vocab
        self.warn = warn or (lambda msg: print(f"rnnkit: warning: {msg}", file=sys.stderr))

    def source_ids(self, text):
        """Source ids of one sentence, its ends' whitespace left out as the pair readers leave
        it out of training and test pairs; empty or over-long input raises DataError, unknown
        tokens are translated as <unk> with a warning naming them."""
        if not text or blank(text):
            raise DataError("empty source sentence: nothing to translate")
        text = text.strip()
        ids = encode(self.src_vocab, text)
        if self.too_long(len(ids)):
            raise DataError(self.too_long(len(ids)))
        unknown = unknown_tokens(self.src_vocab, text)
        if unknown:
            self.warn(f"{len(unknown)} source token(s) not in the training vocabulary, read as "
                      f"<unk>: {unknown[:10]!r}")
        return ids

    def too_long(self, n):
        """The message for a source of ``n`` tokens past the model's max_len; None within it."""
        limit = self.model.config.max_len
        if n <= limit:
            return None
        return (f"source has {n} {self.src_vocab.kind} tokens; this model accepts at most "
                f"max_len={limit}: split the sentence")

    def check_lengths(self, texts, where):
        """DataError naming ``where`` and the line (or argument) of the first text too long
        for the model, before any is translated."""
        for i, text in enumerate(texts, 1):
            at = f"argument {i}" if where == "argument" else f"{where}:{i}"
            if where == "argument" and blank(text):   # a file's blank line stays blank
                raise DataError(f"{at}: empty source sentence: nothing to translate")
            said = not blank(text) and self.too_long(len(encode(self.src_vocab, text.strip())))
            if said:
                raise DataError(f"{at}: {said}")

    def _encode(self, texts):
        src, lengths = pad([self.source_ids(t) for t in texts])                # (B, S), (B,)
        return src, lengths, self.model.encode(src, lengths)

    def output_limit(self, lengths):
        """Longest output generated: twice the longest source plus 10 tokens, at most max_len
        (an untrained model that never emits </s> should not run to max_len every time)."""
        return min(self.model.config.max_len, 2 * int(max(lengths)) + 10)

    def greedy(self, texts, batch=64):
        """Argmax decoding of many sentences, ``batch`` at a time -> list of strings."""
        return [decode(self.tgt_vocab, ids) for ids in self.greedy_ids(texts, batch)]

    @torch.no_grad()
    def greedy_ids(self, texts, batch=64):
        """:meth:`greedy`'s outputs as the token ids decoding made, each ending at its ``</s>``
        (kept) or at its length limit."""
        texts, batch = api_inputs.texts(texts), api_inputs.count(batch, "batch")
        out = []
        for k in range(0, len(texts), batch):
            chunk = texts[k:k + batch]
            _, lengths, state = self._encode(chunk)
            bos = torch.full((len(chunk),), BOS_ID, dtype=torch.long)
            steps = list(sample(self.model, bos[:, None], self.output_limit(lengths),
                                temperature=0, stop_id=EOS_ID, state=state))  # T x (B,)
            ids = torch.stack(steps, 1) if steps else bos[:, None][:, :0]     # (B, T)
            # each sentence cut at its own limit, as alone (and as beam search cuts it): a
            # sentence's output does not depend on the others in its batch
            rows = [row[:self.output_limit([n])].tolist() for row, n in zip(ids, lengths)]
            out += [r[:r.index(EOS_ID) + 1] if EOS_ID in r else r for r in rows]
        return out

    @torch.no_grad()
    def beam(self, text, beam_size=5, length_penalty=1.0):
        """Beam-search translation of one sentence."""
        text, beam_size = api_inputs.text(text), api_inputs.count(beam_size, "beam_size")
        length_penalty = api_inputs.number(length_penalty, "length_penalty", 0, 10)
        _, lengths, state = self._encode([text])
        (ids, _), = beam_search(self.model, [BOS_ID], beam_size, self.output_limit(lengths),
                                EOS_ID, length_penalty, state=state)
        return decode(self.tgt_vocab, ids)

    def beams(self, texts, beam_size=5, length_penalty=1.0, batch=BEAM_BATCH):
        """Beam-search translations of many sentences, ``batch`` sentences (× beam_size
        hypotheses) searched together: what :meth:`beam` gives for each, faster."""
        return [decode(self.tgt_vocab, ids)
                for ids in self.beam_ids(texts, beam_size, length_penalty, batch)]

    @torch.no_grad()
    def beam_ids(self, texts, beam_size=5, length_penalty=1.0, batch=BEAM_BATCH):
        """:meth:`beams`' outputs as the token ids beam search made (without the end token)."""
        texts, batch = api_inputs.texts(texts), api_inputs.count(batch, "batch")
        beam_size = api_inputs.count(beam_size, "beam_size")
        length_penalty = api_inputs.number(length_penalty, "length_penalty", 0, 10)
        out = []
        for k in range(0, len(texts), batch):
            chunk = texts[k:k + batch]
            _, lengths, state = self._encode(chunk)
            limits = [self.output_limit(lengths[i:i + 1]) for i in range(len(chunk))]
            found = beam_search_batch(self.model, torch.full((len(chunk),), BOS_ID), state,
                                      beam_size, limits, EOS_ID, length_penalty)
            out += [list(hyps[0][0]) for hyps in found]
        return out

    def translate_ids(self, text, beam_size=1, length_penalty=1.0):
        """The token ids of :meth:`translate_many`'s output for one sentence, as decoding made
        them (greedy: its ``</s>`` kept; beam: without it), for :meth:`attention`."""
        beam_size = api_inputs.count(beam_size, "beam_size")
        return (self.greedy_ids([text]) if beam_size == 1
                else self.beam_ids([text], beam_size, length_penalty))[0]

    def translate(self, text, beam_size=1, length_penalty=1.0):
        """Greedy (beam_size 1) or beam-search translation of one sentence."""
        beam_size = api_inputs.count(beam_size, "beam_size")   # -7 decoded greedily
        return (self.greedy([text])[0] if beam_size == 1
                else self.beam(text, beam_size, length_penalty))

    def translate_many(self, texts, beam_size=1, length_penalty=1.0):
        beam_size = api_inputs.count(beam_size, "beam_size")
        return (self.greedy(texts) if beam_size == 1
                else self.beams(texts, beam_size, length_penalty))

    @torch.no_grad()
    def attention(self, text, translation):
        """(source tokens, target tokens, weights (T, S)) of the model reading its translation:
        the token ids decoding made (:meth:`greedy_ids`; beam search's, without the end), read
        as they are, ``</s>`` last unless decoding stopped at the length limit; or the text,
        encoded again (a text at the limit's length read as cut there)."""
        src, lengths, _ = self._encode([text])
        limit = self.output_limit(lengths)
        if isinstance(translation, str):
            pieces = [encode(self.tgt_vocab, p) for p in translation.split(UNK_TEXT)]
            # (an output's <unk> is the one token decoding wrote as "<unk>")
            body = [i for k, p in enumerate(pieces) for i in ([UNK_ID] if k else []) + p]
            ended = len(body) < limit
        else:
            ids = [int(i) for i in translation]
            ended = EOS_ID in ids or len(ids) < limit
            body = ids[:ids.index(EOS_ID)] if EOS_ID in ids else ids
        tgt = [BOS_ID] + body + ([EOS_ID] if ended else [])   # (a cut output never read an end)
        weights = self.model.attention_map(src, lengths, torch.tensor([tgt[:-1]]))   # (T, S)
        src_tokens = [self.src_vocab.itos[i] for i in src[0].tolist()]
        tgt_tokens = [self.tgt_vocab.itos[i] for i in tgt[1:]]
        return src_tokens, tgt_tokens, weights


def char_error_rate(hyps, refs):
    """Corpus CER: character edit distance summed over the pairs / reference characters."""
    edits = sum(edit_distance(h, r) for h, r in zip(hyps, refs, strict=True))
    return edits / max(1, sum(len(r) for r in refs))


def scoring_tokens(text, kind, form=WORD_FORM):
    """The tokens a sentence is scored on: the target vocabulary's tokens, without the whitespace
    between words for word tokens (so token error rate is WER there, CER for characters)."""
    tokens = []
    for i, part in enumerate(text.split(UNK_TEXT)):   # an output's <unk> is one token, as
        tokens += [UNK_TEXT] * (i > 0) + tokenize(part, kind, form)   # the vocabulary holds it
    return [t for t in tokens if not t.isspace()] if kind == "word" else tokens


def corpus_bleu(hyps, refs):
    """sacrebleu's corpus BLEU on detokenised text, with the tokenisation
    :func:`bleu_tokenizer` picks for the references, and with its effective order: an n-gram
    order no output is long enough to hold is left out (plain BLEU is 0 for outputs all
    shorter than 4 tokens, however right they are); where every order is held, the same
    figure."""
    from sacrebleu.metrics import BLEU
    return BLEU(effective_order=True, tokenize=bleu_tokenizer(refs)).corpus_score(
        hyps, [refs]).score


def bleu_tokenizer(refs):
    """sacrebleu's tokeniser for references ``refs``: its default, 13a, for text written with
    spaces; "zh" (each Chinese character a token, as WMT scores Chinese) where they are mostly
    in a script written without spaces and mostly Han; "char" for other such scripts (Japanese
    kana, Thai, ...). 13a read a sentence without spaces as one token: BLEU was the exact-match
    rate."""
    text = "".join(refs[:2000])
    if not unsegmented(text):
        return "13a"
    han = len(HAN.findall(text))
    return "zh" if han >= 0.5 * len(UNSEGMENTED_CHAR.findall(text)) else "char"


HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")


def output_scores(hyps, refs, kind, name, form=WORD_FORM):
    """BLEU, CER, sequence accuracy and token error rate of outputs ``hyps`` against ``refs``,
    keyed ``bleu_<name>``, ``cer_<name>``, ``seq_acc_<name>``, ``ter_<name>``; tokens split as
    the target vocabulary's (``form``: :class:`rnnkit.data.vocab.Vocab`'s)."""
    h = [scoring_tokens(x, kind, form) for x in hyps]
    r = [scoring_tokens(x, kind, form) for x in refs]
    return {f"bleu_{name}": corpus_bleu(hyps, refs), f"cer_{name}": char_error_rate(hyps, refs),
            f"seq_acc_{name}": sequence_accuracy(h, r), f"ter_{name}": token_error_rate(h, r)}


def score_translations(translator, pairs, beam_size=5, length_penalty=1.0, log=None):
    """BLEU, CER, sequence accuracy and token error rate (over the target vocabulary's tokens) of
    greedy and beam decoding on ``pairs`` [(source, reference)]; pairs with a source the model
    cannot take (over-long) are skipped and counted. ``beam_size`` 0 scores greedy decoding only;
    with no pair left, the counts alone (the caller says what that means)."""
    usable = [(s, t) for s, t in pairs if len(encode(translator.src_vocab, s))
              <= translator.model.config.max_len]
    if not usable:
        return {"test_pairs": 0, "test_pairs_skipped": len(pairs), "beam_size": beam_size,
                "length_penalty": length_penalty}
    src, refs = [s for s, _ in usable], [t for _, t in usable]
    quiet = translator.warn
    translator.warn = lambda msg: None            # unknown tokens are expected on held-out data
    try:
        greedy = translator.greedy(src)
        beam = translator.beams(src, beam_size, length_penalty) if beam_size else []
    finally:
        translator.warn = quiet
    kind, form = translator.tgt_vocab.kind, translator.tgt_vocab.form
    metrics = {"test_pairs": len(usable), "test_pairs_skipped": len(pairs) - len(usable),
               "beam_size": beam_size, "length_penalty": length_penalty,
               **output_scores(greedy, refs, kind, "greedy", form)}
    if beam_size:
        metrics.update(output_scores(beam, refs, kind, "beam", form))
    if log:
        for s, r, g, b in list(zip(src, refs, greedy, beam or greedy))[:3]:
            log(f"  src:    {s}\n  ref:    {r}\n  greedy: {g}\n  beam:   {b}")
    return metrics
