"""Bad flags: out-of-range, NaN and unknown values for train and every command that uses a run;
the message must name the flag."""

from .harness import RUN, TRAIN, case, flag_mention


def flag_case(kind, flag, value, expect="error", mention=None, timeout=60):
    case("flag", f"train {kind} {flag} {value}", TRAIN(kind, flag, value), expect,
         mention=mention or flag_mention(flag), timeout=timeout)


def cmd_case(name, argv, expect="error", flag=None, mention=None, **kw):
    case("flag", name, argv, expect, mention=mention or (flag_mention(flag) if flag else ()), **kw)


GRADFLOW = ["gradflow", "--task", "adding", "--lags", "10", "--cells", "lstm", "--steps", "4",
            "--eval-every", "2", "--test-size", "8", "--batch", "4", "--hidden", "4",
            "--explode-gain", "0", "--out", "{out}", "--quiet"]


def add_flag_cases():
    for flag, value in (("--batch", "0"), ("--batch", "abc"), ("--hidden", "0"),
                        ("--dropout", "1.5"), ("--lr", "nan"),
                        ("--weight-decay", "-1"), ("--warmup-steps", "-1"),
                        ("--min-lr-ratio", "-0.5"), ("--max-steps", "-1"),
                        ("--max-minutes", "nan"), ("--eval-every", "0"),
                        ("--eval-tokens", "-1"), ("--batch", "100000")):
        flag_case("lm", flag, value)
    case("flag", "train lm --max-steps 0 (no limit at all)", TRAIN("lm", "--max-steps", "0"),
         mention=("max_steps", "max-steps"))
    case("flag", "train lm --nope (unknown flag)", TRAIN("lm", "--nope"), mention=("--nope",))
    for flag, value in (("--batch", "0"), ("--test-fraction", "-1"),
                        ("--val-fraction", "0.95"), ("--word-dropout", "1.5"),
                        ("--bag-ngrams", "5"), ("--bag-ngrams", "-1")):
        flag_case("classify", flag, value)
    for flag, value in (("--batch", "0"), ("--dropout", "2"), ("--feature-dropout", "1"),
                        ("--word-dropout", "-0.1"), ("--lr-drops", "-1"), ("--drop-factor", "1"),
                        ("--drop-factor", "nan")):
        flag_case("tag", flag, value)
    for extra in (("--crf-tags", "5"), ("--linear-start",)):
        case("flag", f"train tag --no-crf {' '.join(extra)} (a contradiction)",
             TRAIN("tag", "--no-crf", *extra), mention=("--no-crf",))
    for value in ("-1", "10"):
        case("flag", f"train tag --column {value} (CoNLL-U)",
             TRAIN("tag", "--data", "{data}/tagged.conllu", "--column", value),
             mention=(value,))
    for flag, value in (("--batch", "0"), ("--window", "-1"), ("--season", "-3"),
                        ("--window", "100000"), ("--test-fraction", "0.95")):
        flag_case("forecast", flag, value, mention=("window",) if value == "100000" else None)
    for flag, value in (("--batch", "0"), ("--beam-size", "0"), ("--label-smoothing", "1.5"),
                        ("--test-pairs", "-1"), ("--length-penalty", "nan"), ("--max-len", "2")):
        flag_case("seq2seq", flag, value)
    for flag, value in (("--batch", "0"), ("--cond-size", "0"), ("--val-pairs", "-1")):
        flag_case("cond", flag, value)

    sample = lambda *a: ["sample", RUN("lm"), "--length", "5", *a]
    for flag, value in (("--top-p", "1.5"), ("--top-k", "0"), ("--temperature", "-1"),
                        ("--temperature", "nan"), ("--beam", "-2")):
        cmd_case(f"sample {flag} {value}", sample(flag, value), flag=flag)
    cmd_case("sample --prime ''", sample("--prime", ""), flag="--prime")
    cmd_case("sample --prime with characters not in the vocabulary", sample("--prime", "Zq\u00e6"),
             flag="--prime")
    cond = lambda *a: ["sample", RUN("cond"), *a]
    cmd_case("sample (cond) -n 0", cond("--cond", "Italy", "-n", "0"), mention=("-n",))
    cmd_case("sample (cond) --cond of an unknown label", cond("--cond", "Atlantis"),
             mention=("Atlantis",))
    cmd_case("sample (cond) without --cond", cond(), flag="--cond")
    cmd_case("sample (cond) --temperature nan", cond("--cond", "Italy", "--temperature", "nan"),
             flag="--temperature")
    tr = lambda *a: ["translate", RUN("seq2seq"), "ich sehe", *a]
    cmd_case("translate --beam-size 0", tr("--beam-size", "0"), flag="--beam-size")
    cmd_case("translate --length-penalty nan", tr("--length-penalty", "nan"),
             flag="--length-penalty")
    fc = lambda *a: ["forecast", RUN("forecast"), "--png", "{tmp}/f.png", *a]
    cmd_case("forecast --steps 0", fc("--steps", "0"), flag="--steps")
    cmd_case("forecast --steps -1", fc("--steps", "-1"), flag="--steps")
    cmd_case("forecast --steps 100000 (bounded, or quick)", fc("--steps", "100000"), "either",
             flag="--steps", timeout=60)
    for value in ("100", "80,x", "nan", "-5"):
        cmd_case(f"forecast --intervals {value}", fc("--intervals", value), flag="--intervals")
    cmd_case("eval seq2seq --beam-size 0",
             ["eval", RUN("seq2seq"), "{data}/pairs.tsv", "--beam-size", "0"], flag="--beam-size")
    cmd_case("eval classify --beam-size 3 (not a classifier option)",
             ["eval", RUN("classify"), "{data}/labels.tsv", "--beam-size", "3"], flag="--beam-size")
    demo = lambda *a: ["demo", "--out", "{tmp}/demo", "--length", "5", *a]
    for value in ("-1", "0", "nan"):
        cmd_case(f"demo --minutes {value}", demo("--minutes", value), flag="--minutes")
    cmd_case("demo --length -1", ["demo", "--out", "{tmp}/demo", "--minutes", "0.001",
                                  "--length", "-1"], flag="--length")
    for flag, value in (("--lags", "1"), ("--hidden", "0"), ("--lr", "-1"), ("--threads", "0"),
                        ("--task", "nope")):
        cmd_case(f"gradflow {flag} {value}", [*GRADFLOW, flag, value], flag=flag)
    cmd_case("data fetch of an unknown name", ["data", "fetch", "nosuch"], mention=("nosuch",))
    cmd_case("data without an action", ["data"])
    cmd_case("kernels --json", ["kernels", "--json"], "either")
    cmd_case("no command", [])
    cmd_case("an unknown command", ["nosuch"], mention=("nosuch",))
    # paths and names as typed by hand
    cmd_case("train lm --data '' (an empty path: not this folder)", TRAIN("lm", "--data", ""),
             flag="--data")
    cmd_case("eval RUN '' (an empty path)", ["eval", RUN("lm"), ""], mention=("file",))
    cmd_case("train lm --data /dev/null (a device)", TRAIN("lm", "--data", "/dev/null"),
             mention=("/dev/null",))
    cmd_case("data fetch of a near name", ["data", "fetch", "shakespear"],
             mention=("did you mean shakespeare",))
    cmd_case("view of a text file (no checkpoint)", ["view", "{data}/corpus.txt", "--port", "0"],
             mention=("corpus.txt",), timeout=30)
    case("flag", "RNNKIT_THREADS=100000", TRAIN("lm"), env={"RNNKIT_THREADS": "100000"},
         mention=("RNNKIT_THREADS",))
