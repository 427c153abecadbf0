"""The bad-input campaign (issue 14): every class of bad input against the ``rnnkit`` CLI, and how
each one ends.

    .venv/bin/python benchmarks/bad_inputs.py                     # every case, one at a time
    .venv/bin/python benchmarks/bad_inputs.py --only checkpoint -k flip
    .venv/bin/python benchmarks/bad_inputs.py --list              # the cases, without running them
    .venv/bin/python benchmarks/bad_inputs.py --json bad.json --keep

A scratch folder gets tiny valid fixtures for every task (LM corpus, classify TSV/CSV, word/tag
and CoNLL-U files, seq2seq and 1→N pairs, a monthly CSV series) and, on first use, one tiny run of
each task kind (``--max-steps 3``). Each case then runs the real console script in a subprocess,
in its own folder, with a timeout and a 6 GB address-space limit (a config that asks for 256 GB
fails instead of swapping the machine); a case that damages a run works on its own copy.

A case expects ``error`` (a non-zero exit with a clear message), ``ok`` (exit 0), ``either``
(an honest success or a clear error), ``pipe`` (output cut by a closed pipe: no traceback, at
most one line) or ``interrupt`` (a signal: non-zero, no traceback, at most two lines). Outcomes:

    clear         non-zero exit; stderr's last line is ``rnnkit: error: ...`` (or argparse's
                  ``rnnkit ...: error: ...`` after its usage), no traceback, at most 3 lines
                  besides the usage, and the message names what the case says it must (the
                  data file and line, the flag)
    unclear       non-zero exit, but no such line, too many lines, or a message without the
                  file or flag it is about
    internal      ``rnnkit: error: internal error ...``: an unexpected exception, caught by the
                  CLI's last-resort handler (a traceback in disguise)
    traceback     a Python traceback on stderr
    hang          still running at the timeout (killed)
    accepted      exit 0 where an error was expected
    ok            exit 0 where success was expected (or allowed)
    failed        non-zero exit where success was expected
    check-failed  ended as expected, but the case's check of the files it left failed (a run
                  folder out of step, code run from a pickle, a checkpoint still trusted)
    skipped       the case could not be prepared (its base run failed to train, no root for a
                  tmpfs mount, ...)

The report is a table per class (counts of each outcome) and every case that is not ``clear`` or
``ok``, with the tail of its stderr. Runs serially by default (``--jobs 1``): the CPU is shared.

The cases live in ``bad_input_cases/``: the fixtures, the harness that runs the console script,
and one module per class; this script judges, reports and picks the cases to run.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bad_input_cases import all_cases
from bad_input_cases.harness import Ctx, Skip, Work, expand, run_cli

OUTCOMES = ("clear", "ok", "unclear", "internal", "traceback", "hang", "accepted", "failed",
            "check-failed", "skipped")


# ---------------------------------------------------------------- judging
ERROR_LINE = re.compile(r"^rnnkit(?: [\w-]+)*: error: ")
INTERNAL = re.compile(r"^rnnkit: error: internal error")


def message_lines(err):
    """The non-empty stderr lines outside argparse's usage block."""
    lines, in_usage = [], False
    for line in err.splitlines():
        if line.startswith("usage:"):
            in_usage = True
            continue
        if in_usage and line[:1].isspace():
            continue
        in_usage = False
        if line.strip():
            lines.append(line)
    return lines


def judge(case_, c, ran):
    """(outcome, reason) of one run of a case."""
    err = ran.err
    lines = message_lines(err)
    last = lines[-1].strip() if lines else ""
    if ran.timed_out:
        return "hang", f"still running after {case_.timeout:g} s"
    if "Traceback (most recent call last)" in err:
        return "traceback", last[:300]
    if case_.expect == "pipe":
        return ("ok", "") if len(lines) <= 1 else ("unclear", f"{len(lines)} lines: {last[:200]}")
    if case_.expect == "interrupt":
        if ran.rc == 0:
            return "accepted", "exit 0 after the signal"
        if len(lines) > 2:
            return "unclear", f"{len(lines)} lines: {last[:200]}"
        return "clear", last or f"exit {ran.rc}, nothing on stderr"
    if ran.rc == 0:
        return ("ok", "") if case_.expect in ("ok", "either") else ("accepted", "exit 0")
    if case_.expect == "ok":
        return "failed", f"exit {ran.rc}: {last[:300]}"
    if ran.rc < 0:
        return "unclear", f"killed by signal {-ran.rc}" + (f": {last[:200]}" if last else "")
    if not last:
        return "unclear", f"exit {ran.rc} and nothing on stderr"
    if INTERNAL.match(last):
        return "internal", last[:300]
    if not ERROR_LINE.match(last):
        return "unclear", f"not an 'rnnkit: error:' line: {last[:300]}"
    if len(lines) > 3:
        return "unclear", f"{len(lines)} lines of stderr; last: {last[:250]}"
    wanted = [m(c) if callable(m) else m if isinstance(m, re.Pattern) else
              m.replace("{tmp}", str(c.tmp)) for m in case_.mention]
    if wanted and not any(w.search(last) if isinstance(w, re.Pattern) else w in last
                          for w in wanted):
        return "unclear", f"does not name {wanted[0]!r}: {last[:250]}"
    return "clear", last[:300]


def run_case(i, case_, work, keep):
    folder = work.root / "cases" / f"{i:03d}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    c = Ctx(work, folder)
    result = {"class": case_.cls, "name": case_.name, "expect": case_.expect}
    try:
        if case_.setup:
            case_.setup(c)
        argv = [x for a in case_.argv for x in expand(c, a)]
        result["argv"] = "rnnkit " + " ".join(argv).replace(str(work.root), "$W")
        if case_.runner:
            ran = case_.runner(case_, c)
        else:
            env = None
            if case_.env:
                env = {**os.environ, **{k: v.replace("{tmp}", str(c.tmp))
                                        for k, v in case_.env.items()}}
            ran = run_cli(argv, c.tmp, case_.timeout, case_.stdin, env)
        outcome, reason = judge(case_, c, ran)
        problem = case_.check(c, ran) if case_.check else None
        if problem:
            reason = f"{reason}; CHECK: {problem}" if reason else f"CHECK: {problem}"
            if outcome in ("ok", "clear"):
                outcome = "check-failed"
        if c.state.get("note"):
            result["note"] = c.state["note"]
        result.update(outcome=outcome, reason=reason, rc=ran.rc, seconds=round(ran.seconds, 1),
                      stderr_tail=ran.err.strip().splitlines()[-4:])
    except Skip as e:
        result.update(outcome="skipped", reason=str(e), stderr_tail=[])
    except Exception as e:   # a broken case is reported, not fatal to the campaign
        result.update(outcome="skipped", reason=f"case error: {type(e).__name__}: {e}",
                      stderr_tail=[])
    finally:
        for undo in reversed(c.cleanups):
            undo()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return result


# ---------------------------------------------------------------- report
def table(results):
    classes = list(dict.fromkeys(r["class"] for r in results))
    cols = [o for o in OUTCOMES if any(r["outcome"] == o for r in results)]
    width = max(len(c) for c in classes + ["class", "all"])
    head = f"{'class':<{width}}  {'cases':>5}  " + "  ".join(f"{o:>{max(len(o), 5)}}" for o in cols)
    lines = [head, "-" * len(head)]
    for cls in classes + ["all"]:
        rs = [r for r in results if cls in ("all", r["class"])]
        n = Counter(r["outcome"] for r in rs)
        lines.append(f"{cls:<{width}}  {len(rs):>5}  " +
                     "  ".join(f"{n.get(o, 0):>{max(len(o), 5)}}" for o in cols))
    return "\n".join(lines)


def report(results):
    print("\n" + table(results))
    bad = [r for r in results if r["outcome"] not in ("clear", "ok")]
    if bad:
        print(f"\n{len(bad)} cases neither clear nor ok:")
    for r in bad:
        print(f"\n[{r['outcome']}] {r['class']}: {r['name']}  (expected {r['expect']})")
        if r.get("argv"):
            print(f"    $ {r['argv'][:300]}")
        print(f"    {r['reason']}")
        for line in r["stderr_tail"][-3:] if r["outcome"] != "skipped" else []:
            print(f"    | {line[:200]}")
    notes = [r for r in results if r.get("note")]
    if notes:
        print("\nnotes:")
    for r in notes:
        print(f"  {r['name']}: {r['note']}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", help="run only this class (repeatable; a prefix "
                   "is enough: data, flag, run, checkpoint, output, interrupt)")
    p.add_argument("-k", action="append", help="run only cases whose class or name contains this")
    p.add_argument("--jobs", type=int, default=1, help="cases run at once (default 1)")
    p.add_argument("--json", type=Path, help="write every result to this file")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--workdir", type=Path, help="scratch folder (default: a new temporary one)")
    args = p.parse_args(argv)

    cases = list(enumerate(all_cases()))
    if args.only:
        cases = [(i, c) for i, c in cases if any(c.cls.startswith(o) for o in args.only)]
    if args.k:
        cases = [(i, c) for i, c in cases
                 if any(k.lower() in f"{c.cls}: {c.name}".lower() for k in args.k)]
    if args.list:
        for i, c in cases:
            print(f"{i:3d}  {c.cls:<22} {c.name}  [{c.expect}]")
        print(f"{len(cases)} cases: " + ", ".join(f"{k} {v}" for k, v in
                                                 Counter(c.cls for _, c in cases).items()))
        return 0
    root = Path(args.workdir or tempfile.mkdtemp(prefix="rnnkit-bad-inputs-"))
    work = Work(root)
    print(f"{len(cases)} cases, scratch folder {root}", flush=True)
    t0 = time.perf_counter()
    results = [None] * len(cases)

    def one(k):
        i, c = cases[k]
        r = run_case(i, c, work, args.keep)
        results[k] = r
        print(f"{k + 1:3d}/{len(cases)} {r['outcome']:<12} {r.get('seconds', 0):5.1f}s  "
              f"{c.cls}: {c.name}", flush=True)

    serial = [k for k, (_, c) in enumerate(cases) if c.cls == "interrupt/concurrency"]
    parallel = [k for k in range(len(cases)) if k not in serial]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        list(pool.map(one, parallel))
    for k in serial:   # timing-sensitive: alone on the machine
        one(k)
    report(results)
    print(f"\n{len(results)} cases in {(time.perf_counter() - t0) / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps({"summary": table(results), "results": results},
                                        indent=1, ensure_ascii=False) + "\n")
        print(f"-> {args.json}")
    if not args.keep and not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
