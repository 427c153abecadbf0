"""Step-by-step inference speed: rnnkit's inference step (rnnkit.layers.fast_step) against its
layers' forward on one step (what every model's step ran before), a torch.nn stepping loop and
torch.compile'd torch.nn cells; then ``rnnkit sample``'s characters/s and beam-5 translation.

Per-step latency of a 2-layer stack (input = hidden = H) at batch B, the state carried from step
to step; tokens/s = B / latency. Every implementation runs side by side in one process,
interleaved, with the same weights, one thread; the figures are medians over --reps rounds.
The torch.compile'd step is a stack of torch.nn.LSTMCell/GRUCell/RNNCell compiled once per
cell and H (dynamic batch); its compile time is not counted. onnxruntime (where installed) runs
the layer exported as ``rnnkit export`` exports it (its torch.nn equivalent through torch.onnx:
the ONNX LSTM/GRU/RNN operators), one thread, from torch tensors to torch tensors.

    python benchmarks/inference.py                                  # the grid (several minutes)
    python benchmarks/inference.py --cells lstm --H 256 --B 1 --reps 5 --no-compile
    python benchmarks/inference.py --grid none --run runs/lm        # rnnkit sample, chars/s
    python benchmarks/inference.py --grid none --translate          # beam-5 sentences/s
    git worktree add /tmp/before fea1f6f                            # rnnkit before this step
    python benchmarks/inference.py --grid none --run runs/lm --before /tmp/before
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import rnnkit
from inference_before_after import before_after
from rnnkit.layers import fast_step

LAYERS = {"lstm": (rnnkit.LSTM, torch.nn.LSTM, torch.nn.LSTMCell),
          "gru": (rnnkit.GRU, torch.nn.GRU, torch.nn.GRUCell),
          "rnn": (rnnkit.RNN, torch.nn.RNN, torch.nn.RNNCell)}
LAYERS_N = 2


def make(cell, H, B, seed=0):
    """rnnkit's layer, torch.nn's layer and a stack of torch.nn cells, all with one set of
    weights; the input x (B, H) and a zero state."""
    torch.manual_seed(seed)
    ours, theirs, cell_cls = LAYERS[cell]
    ref = theirs(H, H, LAYERS_N, batch_first=True).eval()
    mine = ours(H, H, LAYERS_N, batch_first=True).eval()
    mine.load_state_dict(ref.state_dict())
    cells = torch.nn.ModuleList(cell_cls(H, H) for _ in range(LAYERS_N)).eval()
    for k, c in enumerate(cells):
        c.load_state_dict({n: getattr(ref, f"{n}_l{k}") for n in
                           ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    h = torch.zeros(LAYERS_N, B, H)
    state = (h, h.clone()) if cell == "lstm" else h
    return mine, ref, cells, torch.randn(B, H), state


def cell_stack_step(cells, lstm):
    """One step through a stack of torch.nn cells: x (B, H), state (L, B, H) (a pair for the
    LSTM) -> (top output, state); what torch.compile gets."""
    def step(x, state):
        hs, cs = [], []
        for k, cell in enumerate(cells):
            if lstm:
                x, c = cell(x, (state[0][k], state[1][k]))
                cs.append(c)
            else:
                x = cell(x, state[k])
            hs.append(x)
        return x, ((torch.stack(hs), torch.stack(cs)) if lstm else torch.stack(hs))
    return step


def onnx_step(mine, tmp):
    """An onnxruntime session on the layer exported as rnnkit exports it (rnnkit.export's
    torch.nn equivalent through torch.onnx, batch dynamic), one thread; a step function on
    torch tensors, or None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        return None
    import warnings
    from rnnkit.export import to_torch
    layer = to_torch(mine, inference=True).eval()
    lstm = isinstance(layer, torch.nn.LSTM)
    H, L = layer.hidden_size, layer.num_layers
    x, h = torch.zeros(2, 1, layer.input_size), torch.zeros(L, 2, H)
    names = ["x", "h"] + (["c"] if lstm else [])

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x, h, c=None):
            out, s = self.layer(x, h if c is None else (h, c))
            return (out, *(s if lstm else (s,)))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Step(), (x, h, h) if lstm else (x, h), str(tmp), dynamo=False,
                          opset_version=17, input_names=names,
                          output_names=["y"] + [n + "_out" for n in names[1:]],
                          dynamic_axes={"x": {0: "B"}, **{n: {1: "B"} for n in names[1:]}})
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(tmp), opts, providers=["CPUExecutionProvider"])

    def step(x, state):
        states = state if lstm else (state,)
        feed = {"x": x[:, None].numpy(), **{n: s.numpy() for n, s in zip(names[1:], states)}}
        y, *new = (torch.from_numpy(a) for a in sess.run(None, feed))
        return y[:, 0], (tuple(new) if lstm else new[0])
    return step


def implementations(cell, mine, ref, compiled, ort_step=None):
    def ours(x, s):
        return fast_step.step(mine, x, s)

    def forward(x, s):
        with fast_step.disabled():
            return fast_step.step(mine, x, s)

    def torch_nn(x, s):
        out, s = ref(x[:, None], s)
        return out[:, 0], s
    impls = {"rnnkit": ours, "rnnkit forward": forward, "torch.nn": torch_nn}
    if compiled is not None:
        impls["torch.compile"] = compiled
    if ort_step is not None:
        impls["onnxruntime"] = ort_step
    return impls


def per_step(f, x, state, n):
    t = time.perf_counter()
    for _ in range(n):
        _, state = f(x, state)
    return (time.perf_counter() - t) / n


def time_config(cell, H, B, reps, compiled, ort, budget=0.15):
    """Median seconds per step of each implementation, interleaved rounds."""
    mine, ref, cells, x, state = make(cell, H, B)
    impls = implementations(cell, mine, ref, compiled, ort)
    times, counts = {k: [] for k in impls}, {}
    with torch.inference_mode():
        for k, f in impls.items():                            # warm-up; steps per timing
            per_step(f, x, state, 3)
            counts[k] = max(3, min(2000, int(budget / per_step(f, x, state, 3))))
        for _ in range(reps):
            for k, f in impls.items():
                times[k].append(per_step(f, x, state, counts[k]))
    return {k: statistics.median(v) for k, v in times.items()}


def check_equal(cell, H, B, compiled, ort):
    """The implementations agree on a few steps (a benchmark of wrong results is no benchmark)."""
    mine, ref, cells, x, state = make(cell, H, B)
    outs = {}
    with torch.inference_mode():
        for k, f in implementations(cell, mine, ref, compiled, ort).items():
            s = state
            for _ in range(3):
                y, s = f(x, s)
            outs[k] = y
    for k, y in outs.items():
        err = (y - outs["torch.nn"]).abs().max().item()
        if err > 1e-4:
            raise SystemExit(f"{cell} H={H} B={B}: {k} differs from torch.nn by {err:.2e}")


def grid(args):
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), float32, "
          f"{LAYERS_N}-layer stacks (input = hidden = H), medians of {args.reps} interleaved "
          f"rounds; load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    import tempfile
    tmpdir = tempfile.TemporaryDirectory()
    has_ort = onnx_step(make("rnn", 4, 1)[0], Path(tmpdir.name, "probe.onnx")) is not None
    names = ["rnnkit", "rnnkit forward", "torch.nn"] + ([] if args.no_compile else ["torch.compile"])
    names += ["onnxruntime"] if has_ort else []
    print("\n| cell | H | B | " + " | ".join(f"{n} µs" for n in names)
          + " | rnnkit tokens/s | torch.nn / rnnkit | forward / rnnkit |")
    print("|" + "---|" * (len(names) + 6))
    for cell in args.cells:
        for H in args.H:
            compiled = None
            mine = make(cell, H, 1)[0]
            ort = onnx_step(mine, Path(tmpdir.name, f"{cell}{H}.onnx")) if has_ort else None
            if not args.no_compile:
                torch._dynamo.reset()          # a fresh cache: no recompile limit across sizes
                _, _, cells, _, _ = make(cell, H, 1)
                compiled = torch.compile(cell_stack_step(cells, cell == "lstm"), dynamic=True)
                t0 = time.perf_counter()
                with torch.inference_mode():
                    check_equal(cell, H, 2, compiled, ort)
                print(f"<!-- {cell} H={H}: torch.compile took {time.perf_counter() - t0:.0f} s -->",
                      flush=True)
            for B in args.B:
                check_equal(cell, H, B, compiled, ort)
                t = time_config(cell, H, B, args.reps, compiled, ort)
                cols = " | ".join(f"{t[n] * 1e6:.0f}" for n in names)
                print(f"| {cell} | {H} | {B} | {cols} | {B / t['rnnkit']:,.0f} | "
                      f"{t['torch.nn'] / t['rnnkit']:.1f} | "
                      f"{t['rnnkit forward'] / t['rnnkit']:.1f} |", flush=True)


def sample_rate(args):
    """rnnkit sample's characters/s on a trained run: the generator the command streams from
    (in process, both paths interleaved), then the command itself end to end."""
    from rnnkit.cli.sample import generate
    from rnnkit.tasks.lm import load_lm
    model, vocab = load_lm(args.run)
    c = model.config
    print(f"\nrnnkit sample on {args.run}: {c.layers}x{c.hidden} {c.cell}, {c.vocab_size} "
          f"tokens, temperature 0.8; load average {os.getloadavg()[0]:.1f}")
    rates = {"fast step": [], "forward (RNNKIT_FAST_STEP=0)": []}
    for _ in range(args.reps):
        for k in rates:
            n = args.length if k == "fast step" else max(50, args.length // 10)
            ctx = fast_step.disabled() if k.startswith("forward") else _null()
            with ctx:
                t = time.perf_counter()
                text = "".join(generate(model, vocab, "\n", n, 0.8, seed=1))
                rates[k].append(n / (time.perf_counter() - t))
            assert len(text) >= n
    for k, v in rates.items():
        print(f"- generation, {k}: {statistics.median(v):,.0f} chars/s (median of {len(v)})")
    exe = Path(sys.executable).with_name("rnnkit")
    for env in ("1", "0"):
        n = args.length if env == "1" else max(50, args.length // 10)
        cmd = [str(exe), "sample", str(args.run), "--length", str(n), "--seed", "1"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, RNNKIT_FAST_STEP=env, OMP_NUM_THREADS="1"))
        wall = time.perf_counter() - t
        print(f"- `RNNKIT_FAST_STEP={env} {' '.join(cmd[1:])}`: {wall:.2f} s wall, start-up "
              f"included ({n / wall:,.0f} chars/s)")


def translate_rate(args):
    """Beam-5 translation, sentences/s: a Seq2Seq of the default shape on a character vocabulary
    of 80 (the translation task's default tokens), random weights and no end token, so every
    sentence decodes --max-len tokens: the same work on both paths."""
    from rnnkit.decode import beam_search
    from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(src_vocab=80, tgt_vocab=80)).eval()
    c = model.config
    g = torch.Generator().manual_seed(1)
    sents = [torch.randint(3, 80, (1, int(n)), generator=g)
             for n in torch.randint(20, 41, (args.sentences,), generator=g)]
    print(f"\nbeam-5 translation: Seq2Seq {c.cell}, embed {c.embed}, encoder {c.enc_hidden}x2, "
          f"decoder {c.hidden}, attention {c.attention}, V=80, {len(sents)} sentences of "
          f"20-40 tokens, {args.max_len} tokens out; load average {os.getloadavg()[0]:.1f}")

    from rnnkit.decode import beam_search_batch
    src = torch.nn.utils.rnn.pad_sequence([s[0] for s in sents], batch_first=True)
    lengths = torch.tensor([s.shape[1] for s in sents])

    def run():
        with torch.inference_mode():
            for s in sents:
                beam_search(model, [1], 5, args.max_len, state=model.encode(s, [s.shape[1]]))

    def run_batch():
        with torch.inference_mode():
            beam_search_batch(model, torch.ones(len(sents), dtype=torch.long),
                              model.encode(src, lengths), 5, args.max_len)
    rates = {"fast step": [], "forward (RNNKIT_FAST_STEP=0)": [],
             "fast step, all sentences searched together": []}
    for _ in range(args.reps):
        for k in rates:
            with fast_step.disabled() if k.startswith("forward") else _null():
                t = time.perf_counter()
                run_batch() if k.endswith("together") else run()
                rates[k].append(len(sents) / (time.perf_counter() - t))
    for k, v in rates.items():
        print(f"- {k}: {statistics.median(v):.1f} sentences/s (median of {len(v)})")


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", nargs="+", default=list(LAYERS), choices=list(LAYERS))
    p.add_argument("--H", nargs="+", type=int, default=[256, 1024])
    p.add_argument("--B", nargs="+", type=int, default=[1, 8, 64])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (its compile "
                   "takes tens of seconds per cell and size)")
    p.add_argument("--grid", choices=("all", "none"), default="all")
    p.add_argument("--run", type=Path, help="a trained language-model run: rnnkit sample's rate")
    p.add_argument("--length", type=int, default=2000, help="characters per sample timing")
    p.add_argument("--translate", action="store_true", help="beam-5 translation sentences/s")
    p.add_argument("--sentences", type=int, default=10)
    p.add_argument("--max-len", type=int, default=60)
    p.add_argument("--before", type=Path, help="an older rnnkit source tree: before/after "
                   "figures of model.step, sampling and translation against it (needs --run)")
    p.add_argument("--after-threads", type=int, nargs="+", default=[1],
                   help="torch threads of the 'after' runs of --before (one run each)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.grid == "all":
        grid(args)
    if args.run:
        sample_rate(args)
    if args.translate:
        translate_rate(args)
    if args.before:
        before_after(args)


if __name__ == "__main__":
    main()
