"""``rnnkit train cond`` and ``rnnkit sample RUN --cond LABEL -n N``: a 1→N generator on
label<TAB>sequence pairs (first names by country), then sequences sampled for a chosen label."""
import warnings

from rnnkit.cli.task_runs import TaskRun
from rnnkit.models.conditional import CondConfig
from rnnkit.tasks.cond import CondData, build_cond_task, generate, load_cond, most_likely
from rnnkit.train.checkpoint import load_checkpoint
from rnnkit.config import ConfigError


def condition_gap(task, m):
    wrong = m["test_loss_wrong_cond"]
    return (f"held-out loss {m['test_loss']:.4f} nats/{task.unit} with the right condition, "
            + (f"{wrong:.4f} with a wrong one" if wrong is not None else
               "no wrong one to compare (the held-out part has one condition)"))


RUN = TaskRun("cond", CondData, CondConfig, build_cond_task,
              {"max_steps": 3000, "warmup_steps": 100, "schedule": "cosine", "min_lr_ratio": 0.1},
              skip=("vocab_size", "n_classes", "features"), seeded=True, describe=str,
              report=condition_gap, keeps_choices=True)
TRAIN = ("conditional generator on label<TAB>sequence pairs (1-to-N)", RUN.add_flags, RUN.run)


def is_cond_run(args):
    """True when ``rnnkit sample`` is pointed at a conditional-generator run."""
    path = args.run / "last.pt" if getattr(args, "last", False) and args.run.is_dir() else args.run
    try:
        with warnings.catch_warnings():   # (said once, by the load of the path taken)
            warnings.simplefilter("ignore")
            kind = load_checkpoint(path).get("kind")
    except Exception:   # let the path taken report the problem
        return getattr(args, "cond", None) is not None
    if kind == "lm" and getattr(args, "cond", None) is not None:
        raise ConfigError(f"{args.run} is a language model, which takes no condition: leave "
                          f"--cond out (--prime gives the text it goes on from)")
    return kind == "cond" or getattr(args, "cond", None) is not None


def run_sample(args):
    path = args.run / "last.pt" if getattr(args, "last", False) and args.run.is_dir() else args.run
    model, vocab, conditions = load_cond(path)
    if args.cond is None and conditions.features:
        raise ConfigError(f"{args.run} is a conditional generator of {conditions.features} "
                          f"features: pass --cond with {conditions.features} numbers "
                          f"(e.g. --cond {','.join(['0'] * conditions.features)}; "
                          f"--cond={','.join(['-1'] + ['0'] * (conditions.features - 1))} "
                          f"when the first is negative)")
    if args.cond is None:
        raise ConfigError(f"{args.run} is a conditional generator: pass --cond LABEL "
                          f"(one of: {', '.join((conditions.labels or [])[:60])})")
    beam = getattr(args, "beam", 1)
    # 10 samples, or as many of the most likely as the beam holds (at most 10)
    n = getattr(args, "n", None) or (min(10, beam) if beam > 1 else 10)
    prime = getattr(args, "prime", None) or ""
    length = getattr(args, "length", None)
    if beam > 1:   # the n most likely sequences, not samples
        for text in most_likely(model, vocab, conditions, args.cond, n, args.beam,
                                prime=prime, length=length):
            print(text)
        return 0
    temperature = 0.8 if args.temperature is None else args.temperature
    for text in generate(model, vocab, conditions, args.cond, n, temperature, args.top_k,
                         args.top_p, args.seed, prime=prime, length=length):
        print(text)
    return 0

