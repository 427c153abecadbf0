"""What the task adapters share: padding, step-deterministic shuffled batches, word vocabularies,
and the end of a run (evaluate best.pt on the held-out test part, write metrics.json and, for
classifiers and taggers, the per-class table report.txt).

Shapes: B batch, T time (the longest sequence in the batch).
"""
import random
import sys
from collections import Counter
from pathlib import Path

import torch

from rnnkit.data.vocab import UNK, Vocab
from rnnkit.outputs import atomic_write
from rnnkit.tasks.metrics import format_report
from rnnkit.train import Checkpointer, ProgressBar, Trainer, distributed, load_checkpoint
from rnnkit.train.callbacks import loss_label
from rnnkit.train.checkpoint import built_from, json_text
from rnnkit.train.trainer import TrainingError

PAD = "<pad>"


def warn(message):
    """A warning on standard error: the run goes on. Under torchrun rank 0 alone says it (every
    rank reads the data alike), in one write, so that lines never interleave."""
    if distributed.current().main:
        sys.stderr.write(f"rnnkit: warning: {message}\n")
        sys.stderr.flush()


def warn_shared(train, given, key, what="examples", show=None):
    """Warn where a part from its own file (``given``: (flag, file, examples)) holds examples
    whose ``key`` (the text, the sentence, the input's digest) a training example has too:
    scores on them are scores on what the model trained on. ``show`` names an example in the
    message (default: its key)."""
    seen = {key(e) for e in train}
    show = show or (lambda e: repr(str(key(e))[:60]))
    for flag, file, part in given:
        shared = [e for e in part if key(e) in seen] if file else []
        if shared:
            warn(f"{flag} {file}: {len(shared):,} of its {len(part):,} {what} are also in the "
                 f"training part (e.g. {show(shared[0])}): they score the model on what it "
                 f"trained on")


def warn_unknown(path, tokens, known, what="tokens",
                 guess="a text in another language or script than its training data?"):
    """Warn when ``known`` (a vocabulary's token -> id) holds under half of a file's ``tokens``:
    a model scored on such a file would report a figure about another kind of text. Tokens of
    whitespace alone (the space between words, a token of character vocabularies) are no
    evidence either way and are not counted."""
    tokens = [t for t in tokens if t.strip()]
    if not tokens:
        return
    covered = sum(t in known for t in tokens) / max(len(tokens), 1)
    if covered < 0.5:
        whose = {"argument": "the arguments'", "<stdin>": "the input's"}.get(str(path),
                                                                             "the file's")
        warn(f"{path}: the model's vocabulary holds {covered:.0%} of {whose} {what} ({guess})")


def drop_tokens(ids, p, generator, unk):
    """Word dropout: ``ids`` with each token (id > 0, not padding) replaced by ``unk`` with
    probability p, drawn from ``generator`` (seeded by the step: a resumed run sees the same
    batch)."""
    return ids.masked_fill((torch.rand(ids.shape, generator=generator) < p) & (ids > 0), unk)


def pad(seqs, value=0):
    """List of B id lists -> (padded (B, T) long tensor, lengths (B,) long tensor)."""
    lengths = torch.tensor([len(s) for s in seqs])                            # (B,)
    out = torch.full((len(seqs), int(lengths.max())), value, dtype=torch.long)  # (B, T)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out, lengths


class Batches:
    """Indices of the examples in batch ``step``: a fresh seeded shuffle each pass, so the batch
    for a step is the same after a resume. Given the examples' ``lengths``, each run of 50
    batches is sorted by length before it is cut (bucketing: less padding, the same shuffle).
    In a data-parallel run each rank gets its contiguous share of the batch: the examples of a
    step are the same whatever the number of processes."""

    BUCKET = 50

    def __init__(self, n, batch, seed=0, lengths=None):
        distributed.check_capped_batch(batch, n)
        self.n, self.batch, self.seed, self.lengths = n, min(batch, n), seed, lengths
        self.per_pass = n // self.batch
        self._pass, self._batches = None, None

    def __call__(self, step):
        p, i = divmod(step, self.per_pass)
        if p != self._pass:
            self._pass, self._batches = p, self.plan(p)
        return distributed.shard(self._batches[i])

    def plan(self, p):
        """The batches of pass ``p``: lists of example indices."""
        rng = random.Random(self.seed * 100003 + p)
        order = list(range(self.n))
        rng.shuffle(order)
        order = order[:self.per_pass * self.batch]
        if self.lengths is not None:
            size = self.BUCKET * self.batch
            order = [i for k in range(0, len(order), size)
                     for i in sorted(order[k:k + size], key=self.lengths.__getitem__)]
        batches = [order[k:k + self.batch] for k in range(0, len(order), self.batch)]
        if self.lengths is not None:
            rng.shuffle(batches)
        return batches


def chunks(n, size):
    """Consecutive index ranges covering range(n), for evaluation batches."""
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def length_chunks(lengths, size, tokens):
    """Evaluation batches of similar lengths: lists of indices into ``lengths``, shortest first,
    each at most ``size`` examples and, padded to its longest, at most ``tokens`` steps in all
    (one example alone if it is longer). Every index once."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    out, cur = [], []
    for i in order:
        if cur and (len(cur) == size or (len(cur) + 1) * lengths[i] > tokens):
            out.append(cur)
            cur = []
        cur.append(i)
    return out + [cur] if cur else out


def build_vocab(sequences, min_count=1, specials=(PAD, UNK)):
    """Word vocabulary of the training sequences: the specials (``<pad>`` = 0, ``<unk>`` = 1),
    then tokens seen at least ``min_count`` times, most frequent first."""
    counts = Counter(t for s in sequences for t in s)
    keep = [t for t, c in counts.most_common() if c >= min_count and t not in specials]
    return Vocab(list(specials) + keep, "word")


def encode(vocab, tokens):
    """Tokens -> ids; unknown tokens map to ``<unk>``."""
    return [vocab.stoi.get(t, vocab.unk) for t in tokens]


def train(task, train_config, out, quiet=False, resume_from=None, log=print, extras=None,
          telemetry=0, spent=0.0):
    """Run the shared trainer with the usual callbacks (continuing the checkpoint ``resume_from``
    if given; ``extras`` go into every checkpoint), then score best.pt on the test part and write
    ``metrics.json``: the trainer's summary plus the task's ``test_metrics()``. ``log`` hears of
    the resume and, before the test part is scored, of the best validation loss. ``telemetry``
    N > 0 records the layers' BPTT error signal every N steps into ``gradients.jsonl``
    (:class:`rnnkit.diagnostics.callbacks.GradientTelemetry`). A run that
    never reached a finite validation loss raises TrainingError (metrics.json then holds the
    trainer's summary alone).
    ``spent``: seconds this run has already taken (reading the data, the forecaster's choice
    of its parts): they count towards --max-minutes and the run's wall time.

    In a data-parallel run (:mod:`rnnkit.train.distributed`) every rank trains; rank 0 alone
    has the progress bar, writes the run folder and scores the test part."""
    main = distributed.current().main
    callbacks = [ProgressBar(disable=quiet), Checkpointer(out, extras)] if main else []
    if telemetry:   # every rank records its share of the batch; rank 0 writes the whole's
        from rnnkit.diagnostics.callbacks import GradientTelemetry   # imports the gradient lab
        callbacks.insert(1, GradientTelemetry(every=telemetry, path=Path(out) / "gradients.jsonl"
                                              if main else None))
        # (before the Checkpointer: a step's record is written before the checkpoint after it)
    trainer = Trainer(task, train_config, callbacks)
    if resume_from is not None:
        with built_from(Path(out) / "last.pt"):   # weights or state that do not fit: one line
            trainer.load_state_dict(resume_from)
        trainer.continue_from(Path(out) / "last.pt")   # best.pt settled; its weights or state
        log(f"resuming {out} at step {trainer.step:,}")
    trainer.elapsed += spent
    summary = trainer.fit()
    distributed.finish()   # every rank past its last collective; rank 0 goes on alone
    # (a run whose every validation loss was NaN: the Trainer's TrainingError)
    if main and not (Path(out) / "best.pt").is_file():   # rank 0 wrote it, if anyone
        raise TrainingError(f"{Path(out) / 'best.pt'} is missing at the run's end (removed while "
                            f"it trained?): there is no model to score or use")
    at = f"at step {summary['best_step']:,} of " if summary.get("best_step") is not None else \
        "after "
    log(f"best validation loss {summary['best_val_loss']:.4f} {loss_label(task)} {at}"
        f"{summary['steps']:,} steps, {summary['wall_seconds'] / 60:.1f} min -> {out}")
    if not main:
        return summary
    task.model.load_state_dict(load_checkpoint(Path(out) / "best.pt")["model"])
    task.model.eval()
    with torch.no_grad():
        metrics = {**summary, **(task.test_metrics() if hasattr(task, "test_metrics") else {})}
    text = json_text(metrics)
    atomic_write(Path(out) / "metrics.json", lambda f: f.write(text.encode()))
    per_class = metrics.get("test_per_class") or metrics.get("test_per_tag")
    if per_class:   # the per-class table, readable without a JSON viewer
        table = format_report(per_class).encode()
        atomic_write(Path(out) / "report.txt", lambda f: f.write(table))
    return metrics


