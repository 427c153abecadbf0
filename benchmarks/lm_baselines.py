"""What a user would otherwise write, as the yardsticks of ``benchmarks/quality_lm.py``.

    python benchmarks/lm_baselines.py plain --data fortunes --minutes 3 --out runs/x/plain.json
    python benchmarks/lm_baselines.py gpt   --data fortunes --minutes 3 --out runs/x/gpt.json

- ``plain``: the 40-line char-rnn a PyTorch user writes: ``torch.nn.LSTM`` (embedding 64,
  2 x 256), batches of 64 streams x 100 steps with the state carried, Adam 2e-3 constant,
  gradient norm clipped to 5.
- ``gpt``: nanoGPT's CPU configuration for character Shakespeare (4 layers, 4 heads, 128 wide,
  block 64, batch 12, no dropout, AdamW 1e-3 with betas (0.9, 0.99), weight decay 0.1, warm-up
  100, cosine to 1e-4, clip 1), its cosine stretched over the time budget.

Both read rnnkit's corpus and split (the same vocabulary, the last 5% for validation), validate
every ``--eval-every`` steps inside the time budget, and write the best validation loss in nats
per character to ``--out`` as JSON.
"""
import argparse
import json
import math
import time

import torch
from torch import nn
from torch.nn import functional as F

from rnnkit.data import StreamBatches, Vocab, read_text, resolve, split_ids


def corpus(name):
    text = read_text(resolve(name))
    vocab = Vocab.build(text, "char")
    train, val = split_ids(vocab.encode(text))
    return vocab, train, val


# ----------------------------------------------------------------- the plain torch.nn.LSTM script
class PlainLM(nn.Module):
    def __init__(self, V, embed=64, hidden=256, layers=2):
        super().__init__()
        self.embed = nn.Embedding(V, embed)
        self.rnn = nn.LSTM(embed, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, V)

    def forward(self, x, state=None):
        h, state = self.rnn(self.embed(x), state)
        return self.head(h), state


def plain_val(model, val):
    batches = StreamBatches(val, min(64, max(1, (len(val) - 1) // 100)), 100)
    total, n, state = 0.0, 0, None
    with torch.no_grad():
        for x, y, _ in batches:
            logits, state = model(x, state)
            total += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
            n += y.numel()
    return total / n


def run_plain(args, vocab, train, val):
    torch.manual_seed(args.seed)
    model = PlainLM(len(vocab))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    batches = StreamBatches(train, 64, 100)
    best, step, state, t0 = math.inf, 0, None, time.perf_counter()
    while time.perf_counter() - t0 < 60 * args.minutes:
        x, y, first = batches[step]
        logits, state = model(x, None if first else state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        if step % args.eval_every == 0:
            best = min(best, plain_val(model, val))
    return {"steps": step, "best_val": min(best, plain_val(model, val))}


# ----------------------------------------------------------------- nanoGPT's CPU configuration
class Block(nn.Module):
    def __init__(self, C, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(C, bias=False), nn.LayerNorm(C, bias=False)
        self.qkv, self.proj, self.heads = nn.Linear(C, 3 * C, bias=False), nn.Linear(C, C, bias=False), heads
        self.mlp = nn.Sequential(nn.Linear(C, 4 * C, bias=False), nn.GELU(), nn.Linear(4 * C, C, bias=False))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)               # (B, nh, T, hs)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, V, block=64, layers=4, heads=4, C=128):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(block, C)
        self.blocks = nn.Sequential(*[Block(C, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(C, bias=False)
        self.head = nn.Linear(C, V, bias=False)
        self.head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("proj.weight", "mlp.2.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, x):
        pos = torch.arange(x.shape[1])
        return self.head(self.ln_f(self.blocks(self.wte(x) + self.wpe(pos))))


def gpt_val(model, val, block=64):
    n = (len(val) - 1) // block
    x = val[:n * block].view(n, block)
    y = val[1:n * block + 1].view(n, block)
    total = 0.0
    with torch.no_grad():
        for i in range(0, n, 256):
            logits = model(x[i:i + 256])
            total += float(F.cross_entropy(logits.flatten(0, 1), y[i:i + 256].flatten(), reduction="sum"))
    return total / y.numel()


def run_gpt(args, vocab, train, val, block=64, batch=12):
    torch.manual_seed(args.seed)
    model = GPT(len(vocab), block)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(args.seed)
    best, step, t0, budget = math.inf, 0, time.perf_counter(), 60 * args.minutes
    while (elapsed := time.perf_counter() - t0) < budget:
        warm = min(1.0, (step + 1) / 100)
        lr = 1e-4 + (1e-3 - 1e-4) * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        for group in opt.param_groups:
            group["lr"] = lr * warm
        i = torch.randint(len(train) - block - 1, (batch,), generator=g)
        x = torch.stack([train[j:j + block] for j in i])
        y = torch.stack([train[j + 1:j + block + 1] for j in i])
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % (args.eval_every * 5) == 0:
            best = min(best, gpt_val(model, val, block))
    return {"steps": step, "best_val": min(best, gpt_val(model, val, block))}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("which", choices=["plain", "gpt"])
    p.add_argument("--data", required=True)
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    vocab, train, val = corpus(args.data)
    t0 = time.perf_counter()
    result = (run_plain if args.which == "plain" else run_gpt)(args, vocab, train, val)
    result.update(which=args.which, data=args.data, minutes=(time.perf_counter() - t0) / 60,
                  threads=torch.get_num_threads())
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
