"""``layer(x, lengths=...)``: rnnkit's two gathers (:mod:`rnnkit.layers.packing`) against torch's
``pack_padded_sequence`` / ``pad_packed_sequence`` around the same layer, side by side: forward
and backward of a bidirectional LSTM over random batches of a tagged data set's sentences (the
tagger's shapes: 64 sentences, 100 inputs, 128 hidden), median of ``--repeats``.

    python benchmarks/packing_speed.py [--repeats 5] [--threads 1] [--batches 10] [DATA]

DATA: a tagged data set (default pd1998-seg, whose sentences run to hundreds of characters);
its sentence lengths (in the tokens the tagger reads) are all that is read.
"""
import argparse
import statistics
import time

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.data import resolve
from rnnkit.data.tagged import read_tagged, resolve_tag_tokens
from rnnkit.layers import LSTM
from rnnkit.tasks.tag import TagData, as_tokens


def torch_packing(rnn, x, lengths):
    packed = pack_padded_sequence(x, lengths, True, enforce_sorted=False)
    return pad_packed_sequence(rnn(packed)[0], True, total_length=x.shape[1])[0]


def rnnkit_packing(rnn, x, lengths):
    return rnn(x, lengths=lengths)[0]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?", default="pd1998-seg")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    sents = read_tagged(resolve(a.data), TagData().column)
    lens = [len(w) for w, _ in as_tokens(sents, resolve_tag_tokens("auto", sents))]
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(a.batches):
        lengths = torch.tensor([lens[i] for i in torch.randint(len(lens), (a.batch_size,),
                                                                generator=g).tolist()])
        batches.append((torch.randn(a.batch_size, int(lengths.max()), 100, generator=g), lengths))
    torch.manual_seed(0)
    rnn = LSTM(100, 128, batch_first=True, bidirectional=True)
    times, outs = {}, {}
    for _ in range(a.repeats):
        for name, fn in (("torch pack/pad", torch_packing), ("rnnkit", rnnkit_packing)):
            start = time.perf_counter()
            grads = []
            for x, lengths in batches:
                x = x.clone().requires_grad_()
                out = fn(rnn, x, lengths)
                out.backward(torch.ones_like(out))
                grads.append(x.grad)
            times.setdefault(name, []).append(time.perf_counter() - start)
            outs[name] = grads
    steps = statistics.mean(int(x.shape[1]) for x, _ in batches)
    print(f"{a.data}: {a.batches} batches of {a.batch_size} sentences, mean padded length "
          f"{steps:.0f}, {a.threads} thread(s), median of {a.repeats}, forward and backward")
    base = statistics.median(times["torch pack/pad"])
    for name, t in times.items():
        m = statistics.median(t)
        print(f"  {name:15s} {m / a.batches * 1e3:8.1f} ms a batch ({base / m:.1f}x)")
    diff = max(float((u - v).abs().max()) for u, v in zip(*outs.values()))
    print(f"  largest input-gradient difference: {diff:.1e}")


if __name__ == "__main__":
    main()
