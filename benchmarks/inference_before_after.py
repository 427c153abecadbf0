"""Before and after: ``model.step`` µs, ``rnnkit sample``'s generation chars/s and beam-5
sentences/s of an older rnnkit source tree (``--before``) against this one at each thread count
(``--after-threads``), in alternating subprocesses; the part of ``benchmarks/inference.py`` that
its ``--before`` runs.
"""
import os
import statistics
import subprocess
import sys
from pathlib import Path

# Run in a subprocess with PYTHONPATH at a source tree, so that an older rnnkit (before the
# inference step existed) measures the same things with the same public calls.
TREE_PROBE = r"""
import json, statistics, sys, time, torch
run, n_chars, n_sent, max_len, reps, threads = sys.argv[1], *map(int, sys.argv[2:7])
torch.set_num_threads(threads)
from rnnkit.cli.sample import generate
from rnnkit.decode import beam_search
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.tasks.lm import load_lm
out = {"step_us": [], "chars_s": [], "sent_s": [], "sent_s_batch": []}
model, vocab = load_lm(run)
torch.manual_seed(0)
s2s = Seq2Seq(Seq2SeqConfig(src_vocab=80, tgt_vocab=80)).eval()
g = torch.Generator().manual_seed(1)
sents = [torch.randint(3, 80, (1, int(n)), generator=g) for n in torch.randint(20, 41, (n_sent,), generator=g)]
for _ in range(reps):
    with torch.no_grad():
        x, st = torch.tensor([5]), model.init_state(1)
        for _ in range(5):
            _, st = model.step(x, st)
        t = time.perf_counter()
        for _ in range(n_chars):
            _, st = model.step(x, st)
        out["step_us"].append((time.perf_counter() - t) / n_chars * 1e6)
    t = time.perf_counter()
    text = "".join(generate(model, vocab, "\n", n_chars, 0.8, seed=1))
    out["chars_s"].append(n_chars / (time.perf_counter() - t))
    t = time.perf_counter()
    with torch.no_grad():
        for s in sents:
            beam_search(s2s, [1], 5, max_len, state=s2s.encode(s, [s.shape[1]]))
    out["sent_s"].append(len(sents) / (time.perf_counter() - t))
    try:                                  # all sentences searched together, where rnnkit can
        from rnnkit.decode import beam_search_batch
    except ImportError:
        out["sent_s_batch"].append(out["sent_s"][-1])
        continue
    src = torch.nn.utils.rnn.pad_sequence([s[0] for s in sents], batch_first=True)
    lengths = torch.tensor([s.shape[1] for s in sents])
    t = time.perf_counter()
    with torch.no_grad():
        beam_search_batch(s2s, torch.ones(len(sents), dtype=torch.long), s2s.encode(src, lengths),
                          5, max_len)
    out["sent_s_batch"].append(len(sents) / (time.perf_counter() - t))
print(json.dumps({k: statistics.median(v) for k, v in out.items()}))
"""


def before_after(args):
    """model.step µs, rnnkit sample's generation chars/s and beam-5 sentences/s of the rnnkit
    at --before (a source tree, e.g. ``git worktree add /tmp/before fea1f6f``; one thread) and
    of this one at each of --after-threads, in alternating subprocesses; medians over --reps
    rounds."""
    import json
    here = Path(__file__).resolve().parents[1]
    trees = {"before": (args.before, max(50, args.length // 10), args.sentences, 1)}
    for t in args.after_threads:
        trees["after" if t == 1 else f"after, {t} threads"] = (here, args.length, args.sentences, t)
    res = {k: [] for k in trees}
    print(f"\nbefore / after on {args.run}, load average {os.getloadavg()[0]:.1f}:")
    for _ in range(args.reps):
        for k, (tree, n, sent, threads) in trees.items():
            r = subprocess.run([sys.executable, "-c", TREE_PROBE, str(args.run.resolve()), str(n),
                                str(sent), str(args.max_len), "1", str(threads)],
                               capture_output=True, text=True,
                               env=dict(os.environ, PYTHONPATH=str(tree),
                                        OMP_NUM_THREADS=str(threads)), cwd=str(tree))
            if r.returncode:
                raise SystemExit(f"{k} ({tree}) failed: {r.stderr[-2000:]}")
            res[k].append(json.loads(r.stdout.strip().splitlines()[-1]))
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in res.items()}
    b, names = med["before"], [k for k in med if k != "before"]
    print("| | before | " + " | ".join(names) + " | " +
          " | ".join(f"{k} / before" for k in names) + " |")
    print("|---" * (2 + 2 * len(names)) + "|")
    rows = [("model.step at batch 1, µs", "step_us", "{:.0f}", True),
            ("rnnkit sample generation, chars/s", "chars_s", "{:,.0f}", False),
            ("beam-5 translation, sentences/s", "sent_s", "{:.2f}", False),
            (f"beam-5 translation, all {args.sentences} sentences searched together (before: "
             "one at a time), sentences/s", "sent_s_batch", "{:.2f}", False)]
    for label, key, fmt, lower in rows:
        vals = [fmt.format(med[k][key]) for k in names]
        ratios = [f"{(b[key] / med[k][key]) if lower else (med[k][key] / b[key]):.1f}x"
                  for k in names]
        print(f"| {label} | {fmt.format(b[key])} | " + " | ".join(vals) + " | " +
              " | ".join(ratios) + " |")
    print(f"(load average at the end {os.getloadavg()[0]:.1f})")
