"""Interrupted and concurrent runs: two trainings on one folder, kill -9 (mid-save), SIGINT and
SIGTERM, then --resume; the folder left must be in step."""
import json
import random
import shutil
import signal
import time
from pathlib import Path

from .harness import case, finish, kill_group, run_cli, start
from .run_folders import folder_problems, tmp_files


LONG = ["--max-steps", "100", "--eval-every", "5", "--warmup-steps", "0", "--quiet"]
# a run signalled once: long enough that the signal comes before its end on a loaded machine
# (100 steps ended first three times in a row beside other work)
SIGNALLED = ["--max-steps", "1000", "--eval-every", "5", "--warmup-steps", "0", "--quiet"]
# the first of two concurrent runs: still training when the second starts, however fast the
# machine, and done on its own (no signal) within the case's timeout
TIMED = ["--max-steps", "1000000", "--max-minutes", "0.4", "--eval-every", "5",
         "--warmup-steps", "0", "--quiet"]


def metric_rows(run):
    path = Path(run) / "metrics.jsonl"
    return len(path.read_text(errors="replace").splitlines()) if path.exists() else 0


def last_step(run):
    """The step of the run's last metrics row (None: none)."""
    path = Path(run) / "metrics.jsonl"
    rows = path.read_text(errors="replace").splitlines() if path.exists() else []
    try:
        return json.loads(rows[-1]).get("step") if rows else None
    except ValueError:
        return None


def wait_for(test, p, timeout=60):
    """Poll ``test()`` until true; False if the process ended or time ran out first."""
    t_end = time.time() + timeout
    while time.time() < t_end:
        if test():
            return True
        if p.poll() is not None:
            return False
        time.sleep(0.002)
    return False


def describe(problems):
    return "; ".join(problems) if problems else None


def concurrent_runner(kind, second_resumes=False):
    """Two ``train KIND`` on one --out: the second starts while the first trains. The case is
    judged on the one that fails (one of them must be refused), or on both exiting 0."""
    def runner(case_, c):
        def go(resume, steps):
            argv = [*c.train_argv(kind, steps=steps)] + (["--resume"] if resume else [])
            return start(argv, c.tmp)
        t0 = time.perf_counter()
        a = go(False, TIMED)
        if second_resumes:
            wait_for(lambda: (c.out / "last.pt").exists(), a)
        else:
            time.sleep(1.0)
        b = go(second_resumes, LONG)
        ra, rb = finish(a, t0, case_.timeout), finish(b, t0, case_.timeout)
        c.state["both"] = (ra, rb)
        if ra.timed_out or rb.timed_out:
            return ra if ra.timed_out else rb
        return rb if rb.rc != 0 or ra.rc == 0 else ra
    return runner


def concurrent_check(c, ran):
    ra, rb = c.state["both"]
    if ra.rc != 0 and rb.rc != 0:
        return "both runs failed"
    return describe(folder_problems(c.out))


def killed_runner(kills=3, sig=signal.SIGKILL):
    """Train, signal the run (kill -9: the first and the last time while it writes a temporary
    checkpoint file), ``--resume``, ``kills`` times; then --resume to the end. Judged on the
    last --resume (kill -9) or on the first signalled run (SIGINT, SIGTERM)."""
    steps = LONG if sig == signal.SIGKILL else SIGNALLED

    def runner(case_, c):
        first = None
        for k in range(kills):
            argv = c.train_argv("lm", steps=steps) + (["--resume"] if k else [])
            for attempt in range(3):   # a first run that ended before the signal: again
                t0 = time.perf_counter()
                p = start(argv, c.tmp)
                rows = metric_rows(c.out)
                wait_for(lambda: metric_rows(c.out) >= rows + 2, p)
                if sig == signal.SIGKILL and k % 2 == 0:
                    saving = wait_for(lambda: tmp_files(c.out), p, timeout=5)
                    c.state.setdefault("mid-save", []).append(saving)
                else:
                    time.sleep(random.Random(k).uniform(0, 0.2))
                alive = p.poll() is None
                kill_group(p, sig) if sig == signal.SIGKILL else p.send_signal(sig)
                r = finish(p, t0, case_.timeout)
                if r.rc == 0 and last_step(c.out) == int(steps[1]):   # its last step written:
                    alive = False   # it was ending as the signal came (the signal not swallowed)
                if alive or k:
                    break
                c.state.setdefault("ended before the signal", []).append(attempt)
                if attempt == 2:   # judged as it came, its folder kept for the --resume
                    break
                shutil.rmtree(c.out, ignore_errors=True)
            c.state.setdefault("signalled", []).append(r.rc)
            c.state.setdefault("left", []).append(tmp_files(c.out) or "nothing")
            first = first or r
        c.state["note"] = (f"signalled runs exited {c.state['signalled']}; killed while a "
                           f"temporary file was there: {c.state.get('mid-save', '-')}; left after "
                           f"each: {c.state['left']}; first runs that ended before the signal "
                           f"(run again): {len(c.state.get('ended before the signal', []))}")
        final = run_cli(c.train_argv("lm", steps=steps) + ["--resume"], c.tmp, case_.timeout)
        c.state["final"] = final
        return final if sig == signal.SIGKILL else first
    return runner


def killed_check(c, ran):
    final = c.state["final"]
    if final.rc != 0:
        tail = (final.err.strip().splitlines() or ["?"])[-1]
        return f"--resume after the signal failed: {tail}"
    return describe(folder_problems(c.out))


def add_interrupt_cases():
    ic = lambda name, expect, **kw: case("interrupt/concurrency", name, [], expect, timeout=120,
                                         **kw)
    ic("two train lm on one --out at once", "error", runner=concurrent_runner("lm"),
       check=concurrent_check, mention=("run",))
    ic("two train classify on one --out at once", "error", runner=concurrent_runner("classify"),
       check=concurrent_check, mention=("run",))
    ic("train lm --resume while the run still trains", "error",
       runner=concurrent_runner("lm", second_resumes=True), check=concurrent_check,
       mention=("run",))
    ic("kill -9 twice (once mid-save), then --resume", "ok", runner=killed_runner(2),
       check=killed_check)
    ic("Ctrl-C (SIGINT) mid-run, then --resume", "interrupt",
       runner=killed_runner(1, signal.SIGINT), check=killed_check)
    ic("SIGTERM mid-run, then --resume", "interrupt", runner=killed_runner(1, signal.SIGTERM),
       check=killed_check)
    ic("kill -9 mid-run, then the same command without --resume", "error",
       runner=restart_runner, mention=("resume",))


def restart_runner(case_, c):
    p = start(c.train_argv("lm", steps=LONG), c.tmp)
    wait_for(lambda: metric_rows(c.out) >= 2, p)
    kill_group(p)
    p.wait()
    return run_cli(c.train_argv("lm", steps=LONG), c.tmp, case_.timeout)
