"""Trainer callback: every N steps, the BPTT error signal ||dL/dh_t|| of each recurrent layer, its
per-step decay ρ, and the global gradient norm, written as one JSON line per logged step.

Uses the trainer's ``on_step_start`` event to arm a :class:`rnnkit.GradientRecorder` before that
step's backward, and reads the record back at the next step (or at the end of training). No extra
forward or backward pass is run.

    Trainer(task, config, [GradientTelemetry(every=100, path=out / "gradients.jsonl")])

Each line: ``{"step", "grad_norm" (before clipping; null if non-finite), "skipped_steps",
"layers": {"rnn.l0": {"h": [||dL/dh_t|| for t = 0..T-1], "decay_h": ρ, "c": [...], ...}}}``.

In a data-parallel run every rank records its share of the batch and the norms are gathered into
the whole batch's (rank 0 writes them): the figures of one process on the same global batch.
"""
import json
import math
from pathlib import Path

import torch

from rnnkit.bptt.telemetry import GradientRecorder
from rnnkit.train import distributed
from rnnkit.diagnostics.experiments import fit_decay


class GradientTelemetry:
    def __init__(self, every=100, path=None, log=None):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        self.every, self.path, self.log = every, Path(path) if path else None, log
        # the records in memory: every one without a path; with one, the file holds them and
        # memory the last (a long run kept ~50 KB a record, without bound)
        self.history = []
        self._rec, self._step = None, None

    def on_train_start(self, trainer):
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def on_step_start(self, trainer):
        self._harvest(trainer)
        if trainer.step % self.every == 0:
            self._rec, self._step = GradientRecorder(trainer.model).__enter__(), trainer.step

    def on_eval(self, trainer, metrics):
        """Before the checkpoint of this evaluation is written (this callback comes before the
        Checkpointer): the last step's record, which a run stopped right after the checkpoint
        and resumed from it would otherwise never write."""
        self._harvest(trainer)

    def on_train_end(self, trainer, summary):
        self._harvest(trainer)

    def on_train_abort(self, trainer):
        """Stopped by an exception: the armed recorder is closed, its step left unwritten (its
        backward may not have run)."""
        rec, self._rec = self._rec, None
        if rec is not None:
            rec.__exit__(None, None, None)

    def _harvest(self, trainer):
        """Close the armed recorder and keep what the last backward recorded."""
        if self._rec is None:
            return
        rec, self._rec = self._rec, None
        rec.__exit__(None, None, None)
        norm = getattr(trainer, "last_grad_norm", math.nan)
        layers = {}
        for key, states in whole_batch(rec.norms).items():
            entry = {}
            for name, n in states.items():
                values = [_finite_or_none(v) for v in n.tolist()]                  # t = 0..T-1
                entry[name] = values
                # distance from the sequence end: the loss sits at every step for most tasks, so ρ
                # is a summary of how fast ||dL/dh_t|| falls off going back, not a pure product
                entry[f"decay_{name}"] = _finite_or_none(fit_decay(n.flip(0).tolist()))
            layers[key] = entry
        row = {"step": self._step, "grad_norm": _finite_or_none(norm),
               "skipped_steps": trainer.skipped_steps, "layers": layers}
        if self.path:
            self.history = [row]
        else:
            self.history.append(row)
        if self.path:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        if self.log:
            decays = ", ".join(f"{k} ρ={v.get('decay_h') or math.nan:.3f}" for k, v in layers.items())
            self.log(f"step {self._step}: grad norm {norm:.3g}; {decays}")


def whole_batch(norms):
    """The per-step norms {layer: {state: (T,)}} of the whole global batch from each rank's
    share. A rank's loss is weighted so that DDP's average of the ranks' parameter gradients is
    the global mean's; its error signals dL/ds_t are that mean's times the number of ranks, and
    its samples' rows are its own: the whole batch's norm at step t is the root of the ranks'
    sums of squares over the number of ranks (a rank whose sequences ended before t adds 0). Every
    rank must call it at the same step."""
    world = distributed.current()
    if not world.active:
        return norms
    shares = distributed.all_gather({k: {n: v.tolist() for n, v in s.items()}
                                     for k, s in norms.items()}, "the gradient telemetry")
    whole = {}
    for share in shares:
        for key, states in share.items():
            for name, values in states.items():
                sq = whole.setdefault(key, {}).get(name, torch.zeros(0, dtype=torch.float64))
                if len(values) > len(sq):
                    sq = torch.cat([sq, sq.new_zeros(len(values) - len(sq))])
                sq[:len(values)] += torch.tensor(values, dtype=torch.float64) ** 2
                whole[key][name] = sq
    return {k: {n: sq.sqrt() / world.size for n, sq in s.items()} for k, s in whole.items()}


def _finite_or_none(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None
