"""The one training loop every rnnkit task model uses: lr, forward, backward, clip, step, log, save.

The loop knows nothing about language models, classifiers or translators. A *task* plugs in
through this small protocol (duck-typed; no base class needed)::

    task.model                     the nn.Module whose parameters are trained
    task.train_batch(step) -> b    the batch for global step ``step`` (0, 1, 2, ...); deterministic
                                   in ``step`` so that a resumed run continues with the right batch
    task.loss(b) -> (loss, count)  mean loss over the batch (a scalar tensor with its graph) and the
                                   number of predictions it averages (tokens, sequences, ...); count
                                   feeds the tokens/s figure and "tokens seen"
    task.evaluate() -> dict        validation metrics; must hold "val_loss" (lower is better, used
                                   to pick the best checkpoint). Called under model.eval() and
                                   torch.no_grad().

Optional hooks, used when present:

    task.state_dict() / task.load_state_dict(d)   extra resumable state (plain data), e.g. the
                                   language model's hidden state carried across batches
    task.checkpoint_extras() -> dict   stored in every checkpoint: what is needed to use the model
                                   without the task (model config, vocabulary, run settings)
    task.unit                      what ``count`` counts ("char", "word", "sequence"), for display
    task.before_training(log, time_left)   a fresh run's start, before its first step (not a
                                   resumed run's): e.g. the classifier's bag set to its fitted
                                   linear model; its time counts towards --max-minutes, and
                                   time_left() gives the seconds left of it
    task.best_model_state()        the state dict best.pt keeps when the last evaluation is the
                                   best so far, or None for the model's own: e.g. the mix of the
                                   classifier's network and its linear start that was validated
    task.eval_at_start             True: validate (and checkpoint) once before the first step, so
                                   best.pt can be the model the run starts from. For a task whose
                                   untrained model is already a forecast worth keeping (the
                                   forecaster starts at its fitted linear part); it costs one
                                   validation pass, so tasks whose model starts random leave it off
    task.chance_loss               the validation loss of a uniform guess over the outputs
                                   (log of their number, nats a token): a best worse than twice
                                   it is a run that blew up before it learned (:meth:`check_learned`)
    task.trainable                 False: nothing worth training (the run ends at step 0, after
                                   the evaluation eval_at_start makes): e.g. a forecaster whose
                                   validation part is too short to tell a trained GRU from noise

The optimizer is torch's AdamW at the config's rate, or the user's (``Trainer(task, config,
optimizer=...)``: an optimizer or a function of the parameters that makes one); the schedule
scales each parameter group's own rate.

Stateful extras such as carrying a hidden state across truncated-BPTT batches live inside the
task's ``loss``: the loop stays plain. Progress bars, checkpoints and metric files are callbacks
(:mod:`rnnkit.train.callbacks`). A step whose loss or gradient norm is not finite is skipped with a
warning and counted in ``skipped_steps``; after ``MAX_SKIPPED_IN_A_ROW`` such steps in a row the
run ends with its best.pt, or stops with :class:`TrainingError` where it has none or that best is
worse than twice a uniform guess's loss (``task.chance_loss``), instead of spending its
budget learning nothing. Resumed, such a run goes on from best.pt (:mod:`rnnkit.train.resume`).

Under ``torchrun`` (:mod:`rnnkit.train.distributed`) the same loop runs on every rank: the task's
loss goes through DistributedDataParallel, weighted by the rank's share of the global count, so
the averaged gradient is that of the whole global batch; the step's loss, count, a non-finite
flag and rank 0's clock are summed over the ranks in one small all-reduce, so the logged loss,
``tokens`` and the time limit are global and every rank stops at the same step; evaluation
figures and the task's resumable state come from rank 0 and all ranks (gathered) respectively.
"""
import copy
import math
import time
import warnings

import torch

from rnnkit.train.gradients import clip_gradients
from rnnkit.train.resume import Resumable, TrainingError
from rnnkit.train.settings import base_rate, lr_multiplier, make_optimizer
from rnnkit.train.task_protocol import check_task, loss_of, metrics_of

__all__ = ["Trainer", "TrainingError", "MAX_SKIPPED_IN_A_ROW"]

MAX_SKIPPED_IN_A_ROW = 50


class Trainer(Resumable):
    def __init__(self, task, config, callbacks=(), optimizer=None):
        check_task(task, config)
        self.task, self.config, self.callbacks = task, config, list(callbacks)
        self.model = task.model
        self.resumed = False        # load_state_dict: a run that continues a checkpoint
        self.step = self.tokens = self.skipped_steps = 0
        self.skipped_in_a_row = 0
        self.diverged = False       # stopped by non-finite steps after a finite best
        self.best_val = math.inf
        self.best_step = None       # the step whose evaluation gave best_val (best.pt's)
        self.drops = 0              # learning-rate drops done (--lr-drops)
        self.drop_step = None       # the step of the last drop: patience counts from it too
        self._best_state = None     # with --lr-drops: best.pt's model and optimizer, in memory
        self.elapsed = 0.0          # seconds trained so far, over all resumed parts
        self.eval_seconds = 0.0     # the last validation pass's: kept for the final one
        self._t0, self._ended = None, False   # (_ended: the step or time limit reached)
        self._agreed_seconds = None   # data-parallel: rank 0's clock at the last step
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(params, config, optimizer)
        # each group's own rate (a reused optimizer's first, before a schedule scaled it)
        self.base_lrs = [base_rate(group) for group in self.optimizer.param_groups]
        # a loaded state brings its own settings back; the default AdamW takes this run's
        # --weight-decay (a user's optimizer resumes as torch's load_state_dict gives it)
        self.own_decay = optimizer is None
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        self._resumed = False
        self.last_eval = {}
        from rnnkit.train import distributed
        self.dist = distributed
        self.world = distributed.current()
        self.ddp = distributed.wrap(self.model)   # None in a single process
        self._task_state = None       # data-parallel: the task state gathered from every rank
        if 0 < config.patience < config.eval_every:
            warnings.warn(f"--patience {config.patience} is shorter than --eval-every "
                          f"{config.eval_every}: after each evaluation patience runs out before "
                          f"the next, so the run validates and checkpoints every step while it "
                          f"improves; give --patience a multiple of --eval-every")
        if config.lr_drops and not config.patience:
            warnings.warn(f"--lr-drops {config.lr_drops} does nothing without --patience: the "
                          f"run trains to its limit at the schedule's rate")

    # ------------------------------------------------------------ schedule and limits
    def progress(self):
        """Fraction of the run done: the further along of the step and the time limits. The
        time limit keeps back the last validation pass's time (up to half of it) for the final
        one, so that the run ends within --max-minutes."""
        c = self.config
        by_steps = self.step / c.max_steps if c.max_steps else 0.0
        clock = self.seconds() if self._agreed_seconds is None else self._agreed_seconds
        budget = 60 * c.max_minutes
        by_time = clock / (budget - min(self.eval_seconds, budget / 2)) if budget else 0.0
        return min(1.0, max(by_steps, by_time))

    def time_left(self):
        """Seconds left of --max-minutes (inf without a time limit); under torchrun rank 0's
        clock, the same on every rank (every rank must call it alike)."""
        if not self.config.max_minutes:
            return math.inf
        return 60 * self.config.max_minutes - self.agreed_clock()

    def agreed_clock(self):
        """This run's seconds by rank 0's clock, on every rank (a collective under torchrun)."""
        clock = torch.tensor([self.seconds() if self.world.main else 0.0], dtype=torch.float64)
        if self.world.active:
            self.dist.all_reduce_sum(clock, "the time limit")
        return float(clock)

    def lr_factor(self, _):
        c = self.config
        warm = min(1.0, (self.step + 1) / c.warmup_steps) if c.warmup_steps else 1.0
        return (warm * c.drop_factor ** self.drops
                * lr_multiplier(c.schedule, self.progress(), c.decay_fraction, c.min_lr_ratio))

    def seconds(self):
        return self.elapsed + (time.perf_counter() - self._t0 if self._t0 else 0.0)

    def done(self):
        # the limit reached stays reached (the last pass, faster, made the reserve it keeps back
        self._ended = self._ended or self.progress() >= 1.0   # smaller: a step and a pass more)
        return (self._ended or self.out_of_patience() or self.diverged
                or not getattr(self.task, "trainable", True))

    def out_of_patience(self):
        """No better validation loss for ``patience`` steps since best.pt's step (and since the
        last learning-rate drop; the same on every rank: the evaluation that sets it is agreed)."""
        p = self.config.patience
        since = max(self.best_step, self.drop_step or 0) if self.best_step is not None else None
        return bool(p) and since is not None and self.step - since >= p

    def drop_lr(self):
        """Back to the best evaluation's model and optimizer state, the learning rate times
        ``drop_factor`` from here on (a plateau drop that restarts from the best weights, where
        a run that has begun to overfit stands; Keras' ReduceLROnPlateau without the restore).
        The step count, the data order and the random stream go on."""
        self.model.load_state_dict(self._best_state["model"])
        # a copy: the optimizer takes the state's tensors as its own and updates them in place
        self.optimizer.load_state_dict(copy.deepcopy(self._best_state["optimizer"]))
        self.drops += 1
        self.drop_step = self.step
        self.set_lr()
        if self.world.main:
            print(f"step {self.step:,}: no better validation loss since step {self.best_step:,}: "
                  f"back to its weights, learning rate x {self.config.drop_factor:g} "
                  f"(drop {self.drops} of {self.config.lr_drops})")

    def keep_best(self):
        """An in-memory copy of the model and optimizer state best.pt holds (for a drop)."""
        model = getattr(self.task, "best_model_state", lambda: None)()
        self._best_state = copy.deepcopy({
            "model": self.model.state_dict() if model is None else model,
            "optimizer": self.optimizer.state_dict()})

    # ------------------------------------------------------------ the loop
    def fit(self):
        """Train until the step or time limit; returns the summary (also given to callbacks).
        Stopped by an exception (Ctrl-C, SIGTERM, an error), it tells the callbacks first
        (``on_train_abort``: e.g. gradient telemetry closes its recorder, which would go on
        recording every backward of the process)."""
        try:
            return self._fit()
        except BaseException as e:
            try:
                self._emit("on_train_abort")
            except Exception as inner:   # the run's own error is what the user must see
                e.add_note(f"(and a callback's on_train_abort raised {type(inner).__name__}: "
                           f"{inner})")
            raise

    def _fit(self):
        if len(self.optimizer.param_groups) != len(self.base_lrs):
            raise ValueError(f"the optimizer has {len(self.optimizer.param_groups)} parameter "
                             f"groups, {len(self.base_lrs)} when the Trainer was made: give it "
                             f"every group before (add_param_group after it is not scheduled)")
        if not self._resumed:   # a resumed run continues the saved random stream instead
            torch.manual_seed(self.config.seed)
        self._t0, self._ended = time.perf_counter(), False   # from here it counts to the limit
        if self.step == 0 and not self._resumed and hasattr(self.task, "before_training"):
            # a fresh run's own start (e.g. a fitted part); every rank alike, rank 0 tells
            self.task.before_training(log=print if self.world.main else lambda *a: None,
                                      time_left=self.time_left)
        self._emit("on_train_start")
        stats = self._new_stats()
        if self.step == 0 and getattr(self.task, "eval_at_start", False) \
                and self.last_eval.get("step") != 0:   # (a run resumed at step 0 has it)
            self.evaluate(stats)
        if self.world.active and self.config.max_minutes:   # one clock for the first check too
            self._agreed_seconds = self.agreed_clock()   # (rank 0's ran ahead: a hang)
        while True:
            # the drop comes here, not after the evaluation, so that a run saved by that
            # evaluation and resumed makes it too
            if self.out_of_patience() and self.drops < self.config.lr_drops \
                    and self._best_state is not None and self.progress() < 1.0:
                self.drop_lr()
            if self.done():
                break
            self.train_step(stats)
            evaluating = self.step % self.config.eval_every == 0 or self.done()
            # an evaluation starts new stats: the steps since the last log row get one of their
            # own first (a --log-every that does not divide --eval-every lost them)
            if self.step % self.config.log_every == 0 or evaluating:
                self._emit("on_log", dict(stats))
            if evaluating:
                self.evaluate(stats)
                stats = self._new_stats()
        if self.last_eval.get("step") != self.step:
            self.evaluate(stats)
        if self.best_step is None and not math.isfinite(self.best_val):   # every evaluation
            # NaN: no best.pt, no model to use (an old checkpoint's best_step may be None)
            raise TrainingError(
                f"the run learned nothing: no evaluation gave a finite validation loss "
                f"({self.skipped_steps:,} of its {self.step:,} steps were skipped for a "
                f"non-finite loss or gradient), so there is no best.pt; check the data for NaN "
                f"or huge values, or lower --lr")
        if not self.diverged and self.world.main:   # finite all along, and no better than chance
            try:
                self.check_learned(f"the run ended at step {self.step:,}")
            except TrainingError as e:
                warnings.warn(str(e))
        if self.step == 0 and self.world.main and getattr(self.task, "trainable", True) \
                and not getattr(self.task, "eval_at_start", False):
            warnings.warn("the run ended before its first step (its time limit was spent "
                          "first): best.pt is the untrained model; give a larger --max-minutes")
        if self.out_of_patience() and self.world.main:
            drops = f", after {self.drops} learning-rate drop(s)" if self.drops else ""
            print(f"stopped at step {self.step:,}: no better validation loss since step "
                  f"{max(self.best_step, self.drop_step or 0):,} (--patience "
                  f"{self.config.patience:,}{drops})")
        self.elapsed, self._t0 = self.seconds(), None
        summary = self.summary()
        self._emit("on_train_end", summary)
        return summary

    def train_step(self, stats):
        self._emit("on_step_start")   # e.g. gradient telemetry arms its recorder before the backward
        if self.world.rank > 0:   # its own dropout masks, drawn anew each step (rank 0's stream
            # is the checkpointed one), so a resumed run draws what the whole run drew
            torch.manual_seed(self.config.seed * 100003 + self.world.rank * 1009 + self.step)
        self.model.train()
        batch = self.task.train_batch(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        if self.ddp is not None:
            loss, count, finite, loss_sum = self._parallel_backward(batch)
        else:
            loss, count = loss_of(self.task, batch)
            finite = bool(torch.isfinite(loss))
            loss_sum = loss.item() * count if finite else math.nan
        norm = math.nan
        if finite or self.ddp is not None:   # every rank takes part in DDP's gradient reduction
            if self.ddp is None:
                loss.backward()
            norm = clip_gradients(self.model.parameters(), self.config.clip or math.inf)
        self.last_grad_norm = norm    # before clipping; nan when the loss was not finite
        if math.isfinite(norm) and finite:
            self.optimizer.step()
            stats["loss_sum"] += loss_sum
            stats["count"] += count
            stats["norms"].append(norm)
            self.skipped_in_a_row = 0
        else:
            self.skipped_steps += 1
            self.skipped_in_a_row += 1
            what = (f"loss ({loss.item():.4g})" if not finite else
                    f"gradient (loss {loss.item():.4g}, gradient norm {norm:.4g})")
            if self.skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW and self.best_step is not None:
                self.diverged = True   # a finite best.pt stands: the run ends with it
                self.check_learned(f"stopped at step {self.step + 1:,}: the last "
                                   f"{self.skipped_in_a_row} steps all had a non-finite {what}")
                warnings.warn(f"stopped at step {self.step + 1:,}: the last "
                              f"{self.skipped_in_a_row} steps all had a non-finite {what}; the "
                              f"run ends with best.pt "
                              f"(step {self.best_step:,}); --resume with a lower --lr goes on "
                              f"from it")
            elif self.skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
                raise TrainingError(
                    f"stopped at step {self.step + 1:,}: the last {self.skipped_in_a_row} steps "
                    f"all had a non-finite {what}, nothing is being learned; check the data for "
                    f"NaN or huge values, or lower --lr")
            else:
                warnings.warn(f"step {self.step + 1:,}: non-finite {what}; step skipped "
                              f"({self.skipped_steps} so far)")
        self.step += 1
        self.tokens += count
        self.scheduler.step()
        stats["steps"] += 1

    def check_learned(self, why):
        """Raise :class:`TrainingError` where the best validation loss is more than twice the
        task's ``chance_loss`` (a uniform guess over its outputs): a run that blew up before it
        learned anything, whose best.pt (finite, but e.g. 1e19 nats a token) is no model."""
        chance = getattr(self.task, "chance_loss", None)
        if chance is None or self.best_step is None or not self.best_val > 2 * chance:
            return
        raise TrainingError(
            f"{why}, and the best validation loss, {self.best_val:.4g} (step "
            f"{self.best_step:,}), is more than twice a uniform guess's ({chance:.4g}): "
            f"nothing was learned; start again with a lower --lr"
            + (" or --weight-decay" if self.config.weight_decay else ""))

    def _parallel_backward(self, batch):
        """Data-parallel: the loss through DDP and its backward (gradients averaged over the
        ranks). Returns (this rank's loss, global count, all ranks finite, global loss sum)."""
        loss, count = self.ddp(self.task.loss, batch)
        finite = bool(torch.isfinite(loss))
        shared = torch.tensor([loss.item() * count if finite else 0.0, float(count),
                               0.0 if finite else 1.0,
                               self.seconds() if self.world.main else 0.0], dtype=torch.float64)
        self.dist.all_reduce_sum(shared, f"step {self.step}")
        total, bad = int(shared[1]), int(shared[2])
        self._agreed_seconds = float(shared[3])
        # DDP averages the ranks' gradients: weighting each rank's mean loss by its share of the
        # global count makes that average the gradient of the mean over the whole global batch
        with self.dist.collective(f"the backward pass of step {self.step}"):
            (loss * (count * self.world.size / max(total, 1))).backward()
        return loss, total, bad == 0, float(shared[0])

    @torch.no_grad()
    def evaluate(self, stats):
        was = self.model.training
        self.model.eval()
        start = time.perf_counter()
        metrics = metrics_of(self.task)
        seconds = time.perf_counter() - start
        self.model.train(was)
        if self.world.active:   # the same parameters everywhere: rank 0's figures decide "best"
            metrics, seconds = self.dist.broadcast((metrics, seconds),
                                                   f"the evaluation at step {self.step}")
            if hasattr(self.task, "state_dict"):
                states = self.dist.all_gather(self.task.state_dict(), "the task state's gather")
                join = getattr(self.task, "join_states", lambda s: s[0])
                self._task_state = join(states)
        self.eval_seconds = seconds   # (rank 0's on every rank: the time limit is agreed)
        norms = stats["norms"]
        metrics = {"step": self.step, "tokens": self.tokens, "seconds": round(self.seconds(), 2),
                   "lr": float(self.optimizer.param_groups[0]["lr"]),
                   # nan: no step since the last evaluation (step 0) or all of them skipped
                   "train_loss": stats["loss_sum"] / stats["count"] if stats["count"] else math.nan,
                   "grad_norm": sum(norms) / len(norms) if norms else math.nan,
                   "grad_norm_max": max(norms, default=math.nan),
                   "skipped_steps": self.skipped_steps, **metrics}
        metrics["best"] = metrics["val_loss"] < self.best_val
        if metrics["best"]:
            self.best_step = self.step
            if self.drops < self.config.lr_drops and self.config.patience:
                self.keep_best()
        self.best_val = min(self.best_val, metrics["val_loss"])
        self.last_eval = metrics
        self._emit("on_eval", metrics)
        return metrics

    @staticmethod
    def _new_stats():
        return {"loss_sum": 0.0, "count": 0, "norms": [], "steps": 0}

    def _emit(self, event, *args):
        for cb in self.callbacks:
            getattr(cb, event, lambda *a: None)(self, *args)

    def summary(self):
        return {"best_val_loss": self.best_val, "best_step": self.best_step,
                "final_val_loss": self.last_eval.get("val_loss"),
                "steps": self.step, "tokens_seen": self.tokens, "wall_seconds": round(self.seconds(), 2),
                "skipped_steps": self.skipped_steps}
