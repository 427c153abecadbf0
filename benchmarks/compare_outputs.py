"""Whether two checkouts of rnnkit compute the same bits: a training step (outputs, final states,
every gradient) of every configuration tests/test_kernels.py runs through the fused kernels
(LSTM, GRU, RNN; plain, layer-normalised, recurrent dropout, zoneout, resets; padded and
packed; float32 and float64), in each checkout, compared with torch.equal.

    python benchmarks/compare_outputs.py --before /tmp/old-checkout --after .
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch

RUN = r"""
import sys, torch, rnnkit
sys.path.insert(0, "tests")
from test_kernels import CONFIGS, GRU_CONFIGS, RNN_CONFIGS, _train_step
out = {}
for dtype in (torch.float32, torch.float64):
    for config in list(CONFIGS) + list(GRU_CONFIGS) + list(RNN_CONFIGS):
        for packed in (False, True):
            torch.manual_seed(0)
            if config in GRU_CONFIGS:
                m = rnnkit.GRU(5, 16, **GRU_CONFIGS[config]).to(dtype)
            elif config in RNN_CONFIGS:
                m = rnnkit.RNN(5, 16, **RNN_CONFIGS[config]).to(dtype)
            else:
                m = rnnkit.LSTM(5, 16, **CONFIGS[config]).to(dtype)
            x = torch.randn(7, 4, 5, dtype=dtype)
            reset = None
            if packed:
                x = torch.nn.utils.rnn.pack_padded_sequence(x, [7, 3, 6, 1], enforce_sorted=False)
            else:
                reset = torch.zeros(4, 7, dtype=torch.bool)
                reset[1, 3] = reset[2, 5] = True
            out[(str(dtype), config, packed, "reset")] = _train_step(m, x, reset)
            if not packed:
                out[(str(dtype), config, packed, "whole loop")] = _train_step(m, x, None)
torch.save(out, sys.argv[1])
print(rnnkit.__file__, "|", rnnkit.kernels.status())
"""


def run(tree, path):
    tree = os.path.abspath(tree)
    r = subprocess.run([sys.executable, "-c", RUN, path], cwd=tree, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": tree, "OMP_NUM_THREADS": "1"})
    if r.returncode != 0:
        sys.exit(f"{tree}: {r.stderr.strip().splitlines()[-1]}")
    print(f"# {r.stdout.strip()}")
    return torch.load(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        before = run(a.before, os.path.join(tmp, "before.pt"))
        after = run(a.after, os.path.join(tmp, "after.pt"))
    differ = [k for k in before if k not in after
              or not all(torch.equal(x, y) for x, y in zip(before[k], after[k]))]
    n = sum(len(v) for v in before.values())
    print(f"{len(before)} training steps, {n} tensors: "
          + ("all bit-identical" if not differ else f"{len(differ)} differ: {differ}"))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
