"""Training: the task-agnostic loop, its callbacks, the checkpoint format, and the LM task."""
from rnnkit.train.callbacks import Checkpointer, ProgressBar
from rnnkit.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rnnkit.train.settings import TrainConfig
from rnnkit.train.trainer import Trainer
from rnnkit.train import distributed  # noqa: E402  (after Trainer: it builds on trainer.py)

__all__ = ["Checkpointer", "ProgressBar", "CheckpointError", "load_checkpoint", "save_checkpoint",
           "TrainConfig", "Trainer"]
