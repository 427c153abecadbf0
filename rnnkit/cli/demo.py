"""``rnnkit demo``: fetch Shakespeare, train a character LSTM for a few minutes, print a passage."""
import re
import shlex
from pathlib import Path

from rnnkit.cli import sample as sample_cmd
from rnnkit.cli.options import given_path, random_seed, ranged
from rnnkit.config import MAX_STEPS
from rnnkit.cli import train as train_cmd
from rnnkit.tasks.lm import load_lm
from rnnkit.config import ConfigError
from rnnkit.data.datasets import resolve
from rnnkit.train import CheckpointError, load_checkpoint
from rnnkit.train.runlock import RUN_FILES

# Sized for 2 CPU cores: large enough to learn words, names and line breaks within minutes.
DEMO_MODEL = dict(cell="lstm", layers=2, hidden=256, dropout=0.0)
DEMO_DATA = dict(data="shakespeare", seq_len=64, batch=64, eval_tokens=50_000)
DEMO_TRAIN = dict(lr=3e-3, warmup_steps=50, eval_every=200)


def add_parser(sub):
    p = sub.add_parser("demo", help="train a character LSTM on Shakespeare for a few minutes "
                                    "and print what it writes")
    p.add_argument("--minutes", type=ranged(float, "(0, 1e7]"), default=4.0,
                   help="training time (default 4)")
    p.add_argument("--out", type=given_path, default=Path("runs/demo"),
                   help="run folder (default runs/demo; an earlier demo's is replaced, a "
                        "folder holding anything else is refused)")
    p.add_argument("--length", type=ranged(int, (1, MAX_STEPS)), default=700,
                   help="characters to generate (default 700)")
    p.add_argument("--seed", type=random_seed, default=1, help="random seed (default 1)")
    p.set_defaults(func=run)


def warn_if_starved(out):
    """On 2 free cores the demo sees ~25k characters a second; far fewer means a busy machine."""
    import json
    m = json.loads((out / "metrics.json").read_text())
    rate = m["tokens_seen"] / max(m["wall_seconds"], 1e-9)
    if rate < 8000 and m["wall_seconds"] >= 30:   # (shorter: the start's own seconds count)
        print(f"\nnote: only {m['tokens_seen']:,} characters trained ({rate:,.0f}/s; 2 free CPU "
              f"cores give about 25,000/s): the machine looks busy, so the text below will be "
              f"rougher. Run again with more --minutes or on an idle machine.")




# what a language model's run writes, so a demo deletes no more (report.txt: classify, tag)
DEMO_FILES = tuple(name for name in RUN_FILES if name != "report.txt")


def demo_files(out):
    """The files of an earlier demo run in ``out`` (a folder), which a new demo replaces;
    ConfigError where the folder holds anything else (a file or folder of one's own, another
    task's run, a language model of other data): the demo deletes only what it wrote."""
    from rnnkit.train.runlock import LOCK_NAME
    children = list(out.iterdir())
    temporary = re.compile(r"\.[^/]+\.\w+\.tmp(\.\w+)?$")   # atomic writes cut short
    others = [c.name for c in children if not (c.is_file() and (
        c.name in DEMO_FILES or c.name == LOCK_NAME or temporary.match(c.name)))]
    if others:
        raise ConfigError(f"{out} holds what a demo run does not write ({', '.join(others[:3])}"
                          f"{', ...' if len(others) > 3 else ''}); the demo replaces its --out, "
                          f"so choose another")
    for name in ("last.pt", "best.pt"):
        if (out / name).is_file():
            try:
                saved = load_checkpoint(out / name)
            except CheckpointError:
                continue                       # a damaged demo checkpoint: replaced
            data = saved.get("data_config", {}).get("data")
            if saved.get("kind") != "lm" or not same_data(data, DEMO_DATA["data"]):
                raise ConfigError(f"{out} holds a run of {data} (kind {saved.get('kind')!r}), not "
                                  f"a demo run; the demo replaces its --out, so choose another")
            if not demo_settings(saved):   # a Shakespeare model of one's own: kept
                raise ConfigError(f"{out} holds a language model of Shakespeare trained with "
                                  f"other settings than the demo's, not a demo run; the demo "
                                  f"replaces its --out, so choose another")
    return [c for c in children if c.name != LOCK_NAME]


def same_data(saved, demo):
    return saved == demo or (isinstance(saved, str) and Path(saved).expanduser().resolve() ==
                             Path(demo).expanduser().resolve())


def demo_settings(saved):
    """Whether a checkpoint's model, data and training settings are the demo's."""
    for fields, table in ((DEMO_MODEL, "model_config"), (DEMO_DATA, "data_config"),
                          (DEMO_TRAIN, "train_config")):
        config = saved.get(table)
        if not isinstance(config, dict) or any(config[k] != v for k, v in fields.items()
                                               if k != "data" and k in config):
            return False
    return True


def run(args):
    from rnnkit.train.runlock import RunLock
    if args.out.exists():
        if args.out.is_file():
            raise ConfigError(f"--out {args.out}: a file; the demo writes a run folder there")
        own = demo_files(args.out)      # what the demo replaces: its own run, nothing else
        resolve(DEMO_DATA["data"])      # the data first: a failed fetch keeps the old demo
        with RunLock(args.out):         # a folder a live run trains into is refused, kept
            for child in own:
                child.unlink(missing_ok=True)
    flags = train_cmd.build_args(args.out, minutes=args.minutes, seed=args.seed,
                                 **DEMO_MODEL, **DEMO_DATA, **DEMO_TRAIN)
    train_cmd.LM_RUN.run(flags)
    warn_if_starved(args.out)
    model, vocab = load_lm(args.out)
    print(f"\n--- {args.length} characters sampled from {args.out}/best.pt "
          f"(temperature 0.8, top-k 40) ---\n")
    sample_cmd.write(sample_cmd.generate(model, vocab, "\n\n", args.length, 0.8, 40, None, args.seed))
    out = shlex.quote(str(args.out))
    print(f"\nmore: rnnkit sample {out} --prime \"ROMEO.\" --length 500")
    return 0
