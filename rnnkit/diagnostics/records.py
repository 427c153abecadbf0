"""The gradient lab's saved runs: where each run's record lies in a folder, reading one back,
and the settings a folder's runs share (:func:`rnnkit.diagnostics.experiments.run_grid`)."""
import dataclasses
import math
from pathlib import Path

from rnnkit.config import ConfigError


def result_path(out_dir, cfg):
    return out_dir / cfg.task / f"T{cfg.lag}" / f"{cfg.name}-{cfg.optimizer}.json"


def read_record(path):
    """The run record saved at ``path``, or None where it is not one (damaged, cut short, or
    another file)."""
    import json
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"),
                            parse_constant=float)   # records before null: NaN as written
    except (OSError, UnicodeError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        return None
    from rnnkit.diagnostics.experiments import RunConfig
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    if not fields <= set(record["config"]) or not RECORD_KEYS <= set(record):
        return None                                # valid JSON, but not a whole record
    return _nan_for_null(record)


def _nan_for_null(record):
    """A record read back: the figures written as null (not a number, strict JSON) are NaN
    again, as :func:`run` made them; solved_step's null stays None (never solved)."""
    nan = lambda v: math.nan if v is None else v                          # noqa: E731
    out = dict(record)
    for key in ("final_score", "max_grad_norm", "decay_init", "decay_final"):
        out[key] = nan(out[key])
    if isinstance(out["curve"], list):
        out["curve"] = [{k: nan(v) if k != "step" else v for k, v in row.items()}
                        if isinstance(row, dict) else row for row in out["curve"]]
    for key in ("profile_init", "profile_final"):
        if isinstance(out[key], dict):
            out[key] = {k: [nan(v) for v in vs] if isinstance(vs, list) else vs
                        for k, vs in out[key].items()}
    return out


# what run() returns and the report reads
RECORD_KEYS = {"config", "name", "curve", "solved_step", "final_score", "steps_run",
               "nonfinite_steps", "diverged", "max_grad_norm", "profile_init", "profile_final",
               "decay_init", "decay_final"}


SHARED = ("hidden", "batch", "steps", "eval_every", "test_size", "copy_symbols", "seed")   # a
# folder's runs have these alike (the grid's axes, task, lag, cell, init, clip, vary)


def refuse_other(path, theirs, mine):
    """ConfigError where the saved run at ``path`` has settings ``theirs`` other than ``mine``."""
    other = [f"{k} {v} where this one has {mine.get(k)}" for k, v in theirs.items()
             if mine.get(k) != v]
    if other:
        raise ConfigError(f"{path}: a run of other settings is saved there ({', '.join(other[:4])}"
                          f"); one folder holds one setting's runs: give another --out")
