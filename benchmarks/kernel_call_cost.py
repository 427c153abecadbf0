"""What a kernel call costs from Python: by argument name (tensors, checked: rnnkit.kernels.call)
against the positional form with addresses from ``data_ptr()`` (what the calls were before),
for the step kernels the Python loop calls once per time step. b = 0 rows, so the kernel itself
does nothing; min over repeats (the machine's other work only adds). For scale: one time step
of a layer-normalised LSTM through that loop (zoneout), forward and backward.

    python benchmarks/kernel_call_cost.py
"""
import time
import timeit

import torch

import rnnkit
from rnnkit import kernels


def per_call_us(f, number=2000, repeat=7):
    return min(timeit.repeat(f, number=number, repeat=repeat)) / number * 1e6


def main():
    torch.set_num_threads(1)
    k = kernels.get(torch.zeros(1))
    H = 8
    t = {n: torch.zeros(4, 4 * H) for n in ("acts", "z", "gi", "da", "dz")}
    t.update({n: torch.zeros(4, H) for n in ("cp", "c", "h", "tc", "dh", "dc", "dcp", "dy")})
    t.update({n: torch.zeros(4) for n in ("mh", "rh", "mc", "rc")})
    t.update(g_hh=torch.ones(4 * H), b_hh=torch.zeros(4 * H), g_c=torch.ones(H), b_c=torch.zeros(H))
    p = {n: v.data_ptr for n, v in t.items()}          # bound: the old calls' data_ptr() each time
    cases = {
        "lstm_fwd": (
            lambda: k.lstm_fwd(0, H, p["acts"](), p["cp"](), H, p["c"](), p["h"](), p["tc"]()),
            lambda: k.lstm_fwd(b=0, H=H, acts=t["acts"], cp=t["cp"], ld_cp=H, c=t["c"], h=t["h"],
                               tc=t["tc"])),
        "lstm_bwd": (
            lambda: k.lstm_bwd(0, H, p["dh"](), p["dc"](), p["acts"](), p["tc"](), p["cp"](), H,
                               p["da"](), p["dcp"]()),
            lambda: k.lstm_bwd(b=0, H=H, dh=t["dh"], dc=t["dc"], acts=t["acts"], tc=t["tc"],
                               cp=t["cp"], ld_cp=H, da=t["da"], dcp=t["dcp"])),
        "lnlstm_fwd": (
            lambda: k.lnlstm_fwd(0, H, p["gi"](), p["z"](), p["g_hh"](), p["b_hh"](), p["g_c"](),
                                 p["b_c"](), p["cp"](), H, p["acts"](), p["mh"](), p["rh"](),
                                 p["mc"](), p["rc"](), p["tc"](), p["c"](), p["h"](), 1e-5),
            lambda: k.lnlstm_fwd(b=0, H=H, gi=t["gi"], z=t["z"], g_hh=t["g_hh"], b_hh=t["b_hh"],
                                 g_c=t["g_c"], b_c=t["b_c"], cp=t["cp"], ld_cp=H, acts=t["acts"],
                                 mh=t["mh"], rh=t["rh"], mc=t["mc"], rc=t["rc"], ty=t["tc"],
                                 c=t["c"], h=t["h"], eps=1e-5)),
        "lnlstm_bwd": (
            lambda: k.lnlstm_bwd(0, H, p["dh"](), p["dc"](), p["acts"](), p["tc"](), p["c"](),
                                 p["mc"](), p["rc"](), p["g_c"](), p["cp"](), H, p["z"](),
                                 p["mh"](), p["rh"](), p["g_hh"](), p["dy"](), p["da"](),
                                 p["dz"](), p["dcp"]()),
            lambda: k.lnlstm_bwd(b=0, H=H, dh=t["dh"], dc=t["dc"], acts=t["acts"], ty=t["tc"],
                                 c=t["c"], mc=t["mc"], rc=t["rc"], g_c=t["g_c"], cp=t["cp"],
                                 ld_cp=H, z=t["z"], mh=t["mh"], rh=t["rh"], g_hh=t["g_hh"],
                                 dy=t["dy"], da=t["da"], dz=t["dz"], dcp=t["dcp"])),
    }
    print(f"# torch {torch.__version__}, 1 thread; µs per call, min of 7 × 2000")
    print("| kernel | positional, data_ptr() | by name, checked | extra |")
    print("|---|---|---|---|")
    extra = {}
    for name, (pos, named) in cases.items():
        a, b = per_call_us(pos), per_call_us(named)
        extra[name] = b - a
        print(f"| {name} | {a:.2f} | {b:.2f} | {b - a:+.2f} |")
    torch.manual_seed(0)
    m = rnnkit.LSTM(16, 32, layer_norm=True, zoneout=0.1)
    x = torch.randn(50, 8, 16)
    best = float("inf")
    for _ in range(7):
        t0 = time.perf_counter()
        m(x)[0].sum().backward()
        best = min(best, time.perf_counter() - t0)
    step_us = best / 50 * 1e6
    added = extra["lnlstm_fwd"] + extra["lnlstm_bwd"]
    print(f"\nlayer-normalised LSTM, zoneout, B=8 H=32 T=50: {step_us:.0f} µs per time step "
          f"(min of 7); its two kernel calls by name add {added:.1f} µs ({added / step_us:.1%})")


if __name__ == "__main__":
    import argparse
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    main()
