"""Train the tutorial's hand-written cell as a layer: recall the number seen 3 steps earlier.

The target at step t is the input of step t-3, so the error of step t has to travel back three
steps through W_hh to reach the input that explains it: the job of BPTT. Predicting zero scores
a loss of 1 (the inputs' variance); the network gets well below it in a few hundred steps.

    python docs/examples/train_my_rnn.py              # about 10 seconds on a laptop CPU
"""
import argparse
import sys
from pathlib import Path

import torch

import rnnkit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from my_rnn_cell import MyRNNCell                                    # noqa: E402

LAG, T, B, H = 3, 20, 32, 32


def batch():
    x = torch.randn(T, B, 1)                                          # (T, B, I)
    y = torch.cat([torch.zeros(LAG, B, 1), x[:-LAG]])                # y_t = x_{t-3}
    return x, y


def train(steps=200, log_every=50):
    torch.manual_seed(0)
    torch.set_num_threads(1)           # tensors this small run fastest on one thread
    rnn = rnnkit.Recurrent(MyRNNCell, input_size=1, hidden_size=H)   # S_t = tanh(U x_t + W S_{t-1})
    head = torch.nn.Linear(H, 1)                                      # O_t = V S_t
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-2)
    losses = []
    for step in range(1, steps + 1):
        x, y = batch()
        s, _ = rnn(x)                                                 # (T, B, H): every S_t
        loss = torch.nn.functional.mse_loss(head(s)[LAG:], y[LAG:])
        opt.zero_grad()
        loss.backward()                                               # your backward_step, T times
        opt.step()
        losses.append(loss.item())
        if step == 1 or step % log_every == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    return losses


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200)
    train(p.parse_args().steps)
