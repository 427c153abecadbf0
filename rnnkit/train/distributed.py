"""Data-parallel training: one process per rank, launched by ``torchrun``, gradients averaged by
DistributedDataParallel.

``torchrun --nproc_per_node N -m rnnkit train KIND ...`` starts N copies of the command with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` set; :func:`setup` reads them and joins the process group with gloo, the CPU
backend (rnnkit's trainer keeps the model on the CPU; nccl would serve a model on GPUs). Without
those variables, or with a world of one, nothing changes: :func:`current` is then the single
process, rank 0 of 1.

What each rank does (the contract the trainer and the tasks keep):

- every rank builds the same task from the same data (checked by the data fingerprint) and
  the model is broadcast from rank 0 when it is wrapped;
- the global batch of step ``s`` is the same set of examples whatever the world size; each rank
  takes its contiguous share of it (:func:`shard`), so the world size must divide the batch;
- the loss of each rank is weighted by its share of the global count (tokens, sequences) before
  DDP averages the gradients, so the update equals that of one process on the whole batch;
- validation runs on every rank (the parameters are the same), and rank 0's figures are
  broadcast, so every rank takes the same "best" decision;
- rank 0 alone holds the run lock and writes checkpoints, metrics, plots and the progress bar.

A collective that fails (a rank died) or waits longer than ``RNNKIT_DDP_TIMEOUT`` seconds
(default 300) raises :class:`DistributedError`: one line on every surviving rank, and the run
folder keeps the checkpoint of the last evaluation.
"""
import datetime
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from rnnkit.config import ConfigError
from rnnkit.train.trainer import TrainingError

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
DEFAULT_TIMEOUT = 300


class DistributedError(TrainingError):
    """A data-parallel run lost a rank, timed out waiting for one, or found its ranks disagree."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    timeout: float = DEFAULT_TIMEOUT

    @property
    def active(self):
        """True in a data-parallel run of two processes or more."""
        return self.size > 1

    @property
    def main(self):
        """Rank 0: the one that writes the run folder and prints."""
        return self.rank == 0


_world = World()


def current():
    """The world this process belongs to (rank 0 of 1 outside torchrun)."""
    return _world


def launched():
    """True when the environment says this process is one rank of several (torchrun's)."""
    return bool(os.environ.get("WORLD_SIZE")) and _env_int("WORLD_SIZE") > 1


def _env_int(name, what="an integer (torchrun sets it)"):
    value = os.environ.get(name, "")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: expected {what}") from None


def _threads():
    """RNNKIT_THREADS as a count >= 1, or 0 where it is not set; another value is a
    ConfigError."""
    if not os.environ.get("RNNKIT_THREADS"):
        return 0
    threads = _env_int("RNNKIT_THREADS", "a count of threads")
    if not 1 <= threads <= 1024:   # (100,000 threads crashed in the thread pools' start)
        raise ConfigError(f"RNNKIT_THREADS={threads}: expected threads in [1, 1024] (unset: "
                          f"cores / processes)")
    return threads


def setup():
    """Join the process group described by torchrun's environment, once; returns the world.

    Sets the threads per process to cores / local ranks (torchrun sets OMP_NUM_THREADS=1;
    ``RNNKIT_THREADS`` overrides), and silences rank > 0's standard output and warnings (rank 0
    prints the same; errors still reach stderr, so every rank reports its own failure)."""
    global _world
    if _world.active:
        return _world
    if not launched():   # one process (torchrun --nproc_per_node 1 too): RNNKIT_THREADS alone
        threads = _threads()
        if threads:
            torch.set_num_threads(threads)
        return _world
    missing = [v for v in ENV if not os.environ.get(v)]
    if missing:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} asks for a data-parallel run "
                          f"but {', '.join(missing)} {('is', 'are')[len(missing) > 1]} not set: "
                          f"launch with torchrun --nproc_per_node N (and --rdzv-endpoint HOST:PORT "
                          f"for several machines), or unset WORLD_SIZE")
    rank, size = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK")
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE") or size)
    if not 0 <= rank < size:
        raise ConfigError(f"RANK={rank} is outside WORLD_SIZE={size}")
    timeout = DEFAULT_TIMEOUT
    if os.environ.get("RNNKIT_DDP_TIMEOUT"):
        timeout = _env_int("RNNKIT_DDP_TIMEOUT", "whole seconds")
    if timeout < 1:
        raise ConfigError(f"RNNKIT_DDP_TIMEOUT={timeout}: expected seconds >= 1")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = _threads()
    torch.set_num_threads(threads if threads > 0 else max(1, cores // max(1, local_size)))
    where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    try:
        dist.init_process_group("gloo", rank=rank, world_size=size,
                                timeout=datetime.timedelta(seconds=timeout))
    except Exception as e:   # the store refused or timed out: no rendezvous
        raise DistributedError(f"rank {rank}: could not join the {size} processes at {where} "
                               f"within {timeout:.0f} s ({first_line(e)}); check that every rank "
                               f"was started (torchrun) and can reach that address") from None
    _world = World(rank, size, local_rank, local_size, timeout)
    if rank > 0:
        sys.stdout = open(os.devnull, "w")
        warnings.simplefilter("ignore")
    return _world


def finish():
    """Wait at the end of training until every rank is there, so that no rank leaves the
    process group (and exits) while another's last messages are still in flight. Called before
    rank 0 scores the test part alone: a barrier after it would time the other ranks out on a
    long test part."""
    if _world.active and dist.is_initialized():
        with collective("the end of the run"):
            dist.barrier()


def teardown():
    """Leave the process group (at the end of the command)."""
    global _world
    if _world.active and dist.is_initialized():
        dist.destroy_process_group()
    _world = World()


def message(e):
    """The first line of an error's text (its class name if it has none)."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def first_line(e):
    return f"{type(e).__name__}: {message(e)[:200]}"


@contextmanager
def collective(what):
    """Turn a failed or timed-out collective into one line: which rank, doing what, and that the
    run folder keeps its last checkpoint."""
    try:
        yield
    except (RuntimeError, dist.DistError) as e:
        if isinstance(e, TrainingError):
            raise
        w = _world
        raise DistributedError(
            f"rank {w.rank} of {w.size}: lost contact with another rank during {what} (a process "
            f"died, or waited more than {w.timeout:.0f} s) [{first_line(e)}]; the run folder keeps "
            f"the checkpoint of the last evaluation: continue it with --resume") from None


def all_gather(obj, what="a check"):
    """[obj of rank 0, obj of rank 1, ...] on every rank (picklable objects)."""
    if not _world.active:
        return [obj]
    out = [None] * _world.size
    with collective(what):
        dist.all_gather_object(out, obj)
    return out


def broadcast(obj, what="a broadcast"):
    """Rank 0's ``obj`` on every rank."""
    if not _world.active:
        return obj
    box = [obj]
    with collective(what):
        dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(tensor, what="a step"):
    """Sum ``tensor`` (in place) over the ranks; returns it."""
    if _world.active:
        with collective(what):
            dist.all_reduce(tensor)
    return tensor


def agree(fn, what):
    """Run ``fn()`` on every rank; if it raised anywhere, raise on every rank (its own error
    where it failed, the failing rank's message elsewhere), so no rank goes on to wait for one
    that stopped. Returns ``fn()``'s value."""
    error, value = None, None
    try:
        value = fn()
    except Exception as e:   # noqa: BLE001 -- re-raised below, on this rank and the others
        error = e
    if not _world.active:
        if error is not None:
            raise error
        return value
    reports = all_gather(None if error is None else (type(error).__name__, message(error)), what)
    if error is not None:
        raise error
    for rank, report in enumerate(reports):
        if report is not None:
            cls = _known().get(report[0], DistributedError)
            raise cls(f"rank {rank} stopped during {what}: {report[1]}")
    return value


def _known():
    from rnnkit.data import DataError
    from rnnkit.train import CheckpointError
    from rnnkit.train.runlock import RunLockError
    return {c.__name__: c for c in (DataError, CheckpointError, ConfigError, RunLockError,
                                    TrainingError, DistributedError)}


def shard(items, dim=0):
    """This rank's contiguous share of a global batch (a list, or a tensor along ``dim``); the
    world size must divide its length."""
    w = _world
    if not w.active:
        return items
    n = items.shape[dim] if isinstance(items, torch.Tensor) else len(items)
    if n % w.size:
        raise ConfigError(f"a batch of {n} cannot be split evenly over {w.size} processes: "
                          f"choose a --batch that {w.size} divides (and no bigger than the data)")
    k = n // w.size
    if isinstance(items, torch.Tensor):
        return items.narrow(dim, w.rank * k, k)
    return items[w.rank * k:(w.rank + 1) * k]


def check_capped_batch(given, n):
    """ConfigError where a --batch over the ``n`` training examples makes every step's batch
    all ``n`` of them, which the world size does not divide (said when the task is built, not
    at its first step, after the run folder holds a checkpoint)."""
    w = _world
    if w.active and given > n and n % w.size:
        fix = (f"give a --batch of at most {n - n % w.size:,}" if n >= w.size else
               f"no batch fits; launch at most {n:,} processes, or give more data")
        raise ConfigError(f"--batch {given} is more than the {n:,} training examples, so every "
                          f"step's batch is those {n:,}, which cannot be split evenly over "
                          f"{w.size} processes: {fix}")


def check_batch(batch, resumed=False):
    """ConfigError unless the world size divides the global batch (every rank: same message);
    on ``--resume`` the batch is the run's, so the message names the process counts that fit."""
    w = _world
    if w.active and batch % w.size:
        if resumed:
            fits = [n for n in range(1, min(batch, 64) + 1) if batch % n == 0]
            raise ConfigError(f"the run's --batch {batch} cannot be split over {w.size} "
                              f"processes, and on --resume the batch is the run's: launch "
                              f"{', '.join(map(str, fits[:8]))} processes (a count that divides "
                              f"{batch})")
        raise ConfigError(f"--batch {batch} cannot be split over {w.size} processes: the global "
                          f"batch is shared out evenly, so choose a multiple of {w.size}")


class _Call(torch.nn.Module):
    """Lets DDP see any call as the model's forward: ``ddp(fn, *args)`` runs ``fn(*args)`` under
    DDP's forward hooks (a task's loss may call ``model.loss`` rather than ``model(...)``)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, fn, *args):
        return fn(*args)


def may_skip_parameters(model):
    """True when some step can leave a parameter without a gradient: learned initial states
    (unused once a state is carried) or an adaptive softmax (a tail cluster no target falls in)."""
    for m in model.modules():
        if isinstance(m, torch.nn.AdaptiveLogSoftmaxWithLoss):
            return True
        if getattr(getattr(m, "options", None), "learn_init", False):
            return True
    from rnnkit import env_switch
    return env_switch("RNNKIT_DDP_FIND_UNUSED", default=False)


def wrap(model):
    """DistributedDataParallel over ``model`` (parameters broadcast from rank 0), called as
    ``wrapped(fn, *args)``; None outside a data-parallel run."""
    if not _world.active:
        return None
    from torch.nn.parallel import DistributedDataParallel
    with collective("the model's broadcast"):
        return DistributedDataParallel(_Call(model),
                                       find_unused_parameters=may_skip_parameters(model))
