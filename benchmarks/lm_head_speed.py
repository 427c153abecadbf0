"""Training-step time of the language model's output layer choices at a large vocabulary.

    python benchmarks/lm_head_speed.py [--vocab 4700] [--repeats 7]

One training step (forward, backward, AdamW) of the default 2 x 256 LSTM language model on a
64 x 100 batch, with the full softmax, the adaptive softmax and tied embeddings, interleaved
(so the machine's load falls on all alike); medians, and each as a ratio to the full softmax.
Token ids are drawn from a Zipf distribution over the frequency-sorted vocabulary, as in text.
"""
import argparse
import statistics
import time

import torch

from rnnkit.models import LanguageModel, LMConfig


def zipf_ids(V, shape, generator):
    p = 1.0 / torch.arange(1, V + 1, dtype=torch.float64)
    return torch.multinomial(p / p.sum(), shape[0] * shape[1], replacement=True,
                             generator=generator).view(shape)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=4700)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    g = torch.Generator().manual_seed(0)
    x, y = zipf_ids(args.vocab, (64, 100), g), zipf_ids(args.vocab, (64, 100), g)   # (B, T)
    variants = {"full": dict(softmax="full"), "adaptive": dict(softmax="adaptive"),
                "tied": dict(tie="yes", softmax="full")}
    models, opts = {}, {}
    for name, kw in variants.items():
        torch.manual_seed(0)
        models[name] = LanguageModel(LMConfig(vocab_size=args.vocab, **kw))
        opts[name] = torch.optim.AdamW(models[name].parameters(), lr=1e-3)
    times = {name: [] for name in variants}
    for r in range(args.repeats + 1):
        for name, model in models.items():
            t0 = time.perf_counter()
            loss, _ = model.loss(x, y)
            opts[name].zero_grad()
            loss.backward()
            opts[name].step()
            if r:   # the first round warms up (kernel build, allocations)
                times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["full"])
    print(f"V = {args.vocab}, 2 x 256 LSTM, batch 64 x 100, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    for name, t in times.items():
        m = statistics.median(t)
        print(f"{name:<9} {m * 1000:8.0f} ms/step   x{m / base:.2f} of full")


if __name__ == "__main__":
    main()
