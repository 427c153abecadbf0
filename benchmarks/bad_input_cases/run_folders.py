"""Wrong run folders: missing, empty, of another kind, finished without --resume, resumed with
changed flags or data; and what a finished run folder must look like."""
import json
from collections import Counter
from pathlib import Path

from .fixtures import BASE_STEPS, ENGLISH, USE
from .harness import COPY, RUN, TRAIN, Skip, case, expand_use, mkdir, run_cli


def add_run_folder_cases():
    rf = lambda name, argv, expect="error", **kw: case("run folder", name, argv, expect, **kw)
    rf("sample: no such path", ["sample", "{tmp}/nothing"], mention=("nothing",))
    rf("sample: an empty folder", ["sample", "{tmp}/empty"], setup=mkdir("empty"),
       mention=("empty",))
    rf("sample: best.pt is a folder", ["sample", COPY("lm")],
       setup=lambda c: (c.copy("lm") / "best.pt").unlink() or (c.tmp / "lm" / "best.pt").mkdir(),
       mention=("best.pt",))
    rf("sample: best.pt deleted, last.pt there", ["sample", COPY("lm"), "--length", "5"],
       setup=lambda c: (c.copy("lm") / "best.pt").unlink(), mention=("best.pt",))
    for kind, other in (("classify", "lm"), ("lm", "classify"), ("tag", "classify"),
                        ("seq2seq", "cond"), ("forecast", "seq2seq")):
        rf(f"{USE[kind][0]} on a {other} run", [expand_use(kind, RUN(other))], mention=(other,))
    rf("eval: a tag run on a classify file", ["eval", RUN("tag"), "{data}/labels.tsv"],
       mention=("labels.tsv",))
    rf("eval: no such data file", ["eval", RUN("lm"), "{tmp}/nope.txt"], mention=("nope.txt",))
    rf("train lm into a finished run without --resume", TRAIN("lm") + ["--out", COPY("lm")],
       mention=("resume",))
    rf("train lm --resume on an empty folder", TRAIN("lm", "--resume", "--out", "{tmp}/empty"),
       setup=mkdir("empty"), mention=("empty",))
    rf("train lm --resume of a classify run", TRAIN("lm", "--resume", "--out", COPY("classify")),
       mention=("classify",))
    rf("train classify --resume of an lm run", TRAIN("classify", "--resume", "--out", COPY("lm")),
       mention=("lm",))
    rf("train lm --resume with a model flag changed (--hidden 32)",
       TRAIN("lm", "--resume", "--out", COPY("lm"), "--max-steps", "5", "--hidden", "32"),
       mention=("hidden",))
    rf("train lm --resume: corpus with new characters appended",
       ["train", "lm", "--out", "{tmp}/own", "--resume", "--max-steps", "6", "--quiet"],
       setup=own_run_changed("\nZebra QUIXOTE 0123456789 \u00e6\u00f8\u00e5!\n"),
       check=vocab_unchanged, mention=("corpus.txt", "--data"))
    rf("train lm --resume: corpus with known characters appended",
       ["train", "lm", "--out", "{tmp}/own", "--resume", "--max-steps", "6", "--quiet"],
       setup=own_run_changed("Romeo Romeo Romeo wherefore " * 40),
       check=vocab_unchanged, mention=("corpus.txt", "--data"))
    rf("train lm --resume: corpus deleted",
       ["train", "lm", "--out", "{tmp}/own", "--resume", "--max-steps", "6", "--quiet"],
       setup=own_run_changed(None), mention=("corpus.txt", "--data"))
    rf("train lm --resume: last.pt a dangling symlink",
       TRAIN("lm", "--resume", "--out", COPY("lm")),
       setup=lambda c: ((c.copy("lm") / "last.pt").unlink(),
                        (c.tmp / "lm" / "last.pt").symlink_to(c.tmp / "gone.pt")),
       mention=("last.pt",))
    rf("train lm --resume: metrics.jsonl garbage", TRAIN("lm", "--resume", "--out", COPY("lm"),
                                                         "--max-steps", "5"), "either",
       setup=lambda c: (c.copy("lm") / "metrics.jsonl").write_bytes(b"\x00garbage{\n[1,2\n"),
       check=lambda c, r: folder_problems(c.tmp / "lm") if r.rc == 0 else None)
    rf("train lm --out ''", TRAIN("lm", "--out", ""), mention=("--out", "out"))


def own_run_changed(appended):
    """A setup training a tiny LM run on the case's own corpus, then appending ``appended`` to
    the corpus (None: deleting it); the vocabulary before is kept for the check."""
    def setup(c):
        corpus = c.write("corpus.txt", ENGLISH)
        flags = c.work.base_flags("lm")
        flags[1] = str(corpus)
        r = run_cli(["train", "lm", *flags, "--out", c.tmp / "own", *BASE_STEPS], c.tmp, 120)
        if r.rc != 0:
            raise Skip(f"own lm run did not train: {(r.err.strip().splitlines() or ['?'])[-1]}")
        c.state["vocab"] = checkpoint_vocab(c.tmp / "own" / "last.pt")
        if appended is None:
            corpus.unlink()
        else:
            with open(corpus, "a", encoding="utf-8") as f:
                f.write(appended)
    return setup


def checkpoint_vocab(path):
    from rnnkit.train.checkpoint import load_checkpoint
    return load_checkpoint(path).get("vocab")


def vocab_unchanged(c, ran):
    if ran.rc != 0:
        return None
    after = checkpoint_vocab(c.tmp / "own" / "last.pt")
    if after != c.state["vocab"]:
        n = sum(a != b for a, b in zip(c.state["vocab"].get("tokens", []), after.get("tokens", [])))
        return f"the resumed run's vocabulary changed ({n} token ids moved or grew)"
    return None


def tmp_files(run):
    return [p.name for p in Path(run).glob(".*.tmp")]


def folder_problems(run):
    """What is out of step in a finished run folder: leftovers, metric rows, checkpoints."""
    from rnnkit.train.checkpoint import load_checkpoint
    run, problems = Path(run), []
    if not (run / "metrics.jsonl").exists():
        return ["no metrics.jsonl"]
    if tmp_files(run):
        problems.append(f"orphaned temporary files {tmp_files(run)}")
    rows, bad = [], 0
    for line in (run / "metrics.jsonl").read_text(errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            bad += 1
    if bad:
        problems.append(f"{bad} unreadable metrics.jsonl line(s)")
    steps = [r.get("step") for r in rows]
    if any(b <= a for a, b in zip(steps, steps[1:])):
        dup = sorted(s for s, n in Counter(steps).items() if n > 1)
        problems.append(f"metrics.jsonl steps not increasing (repeated: {dup[:5]})")
    try:
        last, best = load_checkpoint(run / "last.pt"), load_checkpoint(run / "best.pt")
    except Exception as e:   # the report names what failed
        return problems + [f"a checkpoint does not load: {str(e)[:200]}"]
    lt, bt = last.get("trainer", {}), best.get("trainer", {})
    if steps and lt.get("step") != steps[-1]:
        problems.append(f"last.pt is at step {lt.get('step')}, metrics.jsonl ends at {steps[-1]}")
    vals = [r["val_loss"] for r in rows if isinstance(r.get("val_loss"), (int, float))]
    if vals and abs(min(vals) - lt.get("best_val", float("nan"))) > 1e-9:
        problems.append(f"last.pt's best_val {lt.get('best_val')} is not the best val_loss "
                        f"{min(vals)} in metrics.jsonl")
    if lt.get("best_val") != bt.get("best_val"):
        problems.append(f"best.pt (best_val {bt.get('best_val')}, step {bt.get('step')}) is older "
                        f"than the best last.pt records ({lt.get('best_val')})")
    summary = run / "metrics.json"
    if summary.exists() and json.loads(summary.read_text()).get("steps") != lt.get("step"):
        problems.append("metrics.json's steps differ from last.pt's")
    return problems
