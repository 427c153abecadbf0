"""The language-model task moved to :mod:`rnnkit.tasks.lm`; these names stay importable here."""
from rnnkit.tasks.lm import LMData, LMTask, build_lm_task, evaluate_file, load_lm

__all__ = ["LMData", "LMTask", "build_lm_task", "evaluate_file", "load_lm"]
