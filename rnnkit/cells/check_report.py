"""What :func:`rnnkit.cells.check.check_cell` reports: each compared quantity, its largest error
and where that error sits (step, batch row, unit; gate and unit in a weight), and the verdict
that names the derivative to fix."""
import math
from dataclasses import dataclass, field

import torch

RTOL, ATOL = 1e-6, 1e-9          # float64: a right backward agrees with autograd to ~1e-14


@dataclass
class Entry:
    """One compared quantity: its largest error, and where that error sits."""
    section: str                 # "one step", "sequence" or "gradcheck"
    name: str                    # "δW_hh", "δh_{t-1}", "h_t", ...
    ok: bool
    max_abs: float = 0.0         # max |rnnkit - autograd|
    rel: float = 0.0             # max_abs / max |autograd|
    where: str = ""              # step, batch row and unit (or row/gate/unit) of the largest error
    note: str = ""


@dataclass
class CellReport:
    cell: str
    sizes: dict
    entries: list = field(default_factory=list)

    @property
    def ok(self):
        return all(e.ok for e in self.entries)

    def failed(self, section=None):
        """Names of the wrong quantities (of one section, or all)."""
        return [e.name for e in self.entries if not e.ok and section in (None, e.section)]

    def entry(self, section, name):
        return next(e for e in self.entries if e.section == section and e.name == name)

    def __str__(self):
        s = self.sizes
        lines = [f"check-cell {self.cell}: I={s['input']} H={s['hidden']} B={s['batch']} "
                 f"T={s['steps']}, float64, seed {s['seed']}",
                 f"  {'':16s} {'max abs err':>11s} {'rel err':>9s}  result  largest error at"]
        section = None
        for e in self.entries:
            if e.section != section:
                section = e.section
                lines.append({"one step": "one step (T = 1)",
                              "sequence": f"sequence of {s['steps']} steps",
                              "gradcheck": "torch.autograd.gradcheck of the node"}[section])
            nums = f"{e.max_abs:11.1e} {e.rel:9.1e}" if e.section != "gradcheck" else " " * 21
            where = e.where + (f" ({e.note})" if e.note and e.where else e.note)
            lines.append(f"  {e.name:16s} {nums}  {'ok' if e.ok else 'WRONG':6s}  {where}".rstrip())
        lines.append(self._verdict())
        return "\n".join(lines)

    def _verdict(self):
        if self.ok:
            return "every gradient agrees with autograd through reference_step"
        fwd = list(dict.fromkeys(e.name for e in self.entries if not e.ok
                                 and not e.name.startswith("δ") and e.section != "gradcheck"))
        if fwd:
            return (f"the forward differs from reference_step ({', '.join(fwd)}): forward_step "
                    f"and reference_step compute different things; fix that first")
        one = [e for e in self.entries if e.section == "one step" and not e.ok]
        if not one:
            return f"wrong: {', '.join(self.failed())}"
        text = (f"wrong in one step: {', '.join(e.name for e in one)} (the derivatives to fix; "
                f"the sequence rows show how far the error spreads)")
        gates = {e.where.split(" unit")[0] for e in one if e.where.startswith("gate ")}
        if len(gates) == 1 and sum(e.where.startswith("gate ") for e in one) > 1:
            text += f"; the weight errors are largest in {gates.pop()}'s rows: check its derivative"
        return text


def compare(section, name, got, want, where, steps=None):
    """max |got - want|, relative to max |want|, and where it is largest. steps = (T, B,
    forward): also name the first step, in the order the pass runs, where it goes wrong."""
    if got.shape != want.shape:
        return Entry(section, name, False, math.inf, math.inf,
                     note=f"shape {tuple(got.shape)}, autograd's {tuple(want.shape)}")
    err = (got - want).abs().nan_to_num(nan=math.inf)
    finite = torch.isfinite(got) & torch.isfinite(want)   # NaN or inf on either side is wrong:
    bad = ~(err <= ATOL + RTOL * want.abs()) | ~finite     # comparisons with NaN are all False
    if err.numel() == 0 or not bad.any():
        mx = err.max().item() if err.numel() else 0.0
        return Entry(section, name, True, mx, _rel(mx, want))
    err = torch.where(finite, err, torch.full_like(err, math.inf))
    idx = tuple(int(i) for i in torch.unravel_index(err.argmax(), err.shape))
    mx = err.max().item()
    note = "" if finite.all() else "NaN or inf values"
    if steps is not None and steps[0] > 1:
        T, B, forward = steps
        wrong = bad.reshape(T, B, -1).any(2).any(1).nonzero().flatten().tolist()
        note = (f"{note}; " if note else "") + f"first wrong at t={wrong[0] if forward else wrong[-1]}" + (
            "" if forward else ", going back")
    return Entry(section, name, False, mx, _rel(mx, want), where(idx), note)


def _rel(mx, want):
    scale = want.abs().max().item() if want.numel() else 0.0
    return mx / scale if scale > 0 else (0.0 if mx == 0 else math.inf)


def at_token(B, word, one_step):
    def where(i):
        n, d = i
        return (f"b={n % B} {word} {d}" if one_step else f"t={n // B} b={n % B} {word} {d}")
    return where


def at_batch(i):
    return f"b={i[0]} unit {i[1]}"


def at_rows(cell, H, gated=True):
    """Where in a weight: the gate and unit of a row of G·H (the unit of a row of H, or of any
    row of a parameter that is not ``gated``: a cell's own), then the column."""
    def where(i):
        r, G = i[0], cell.N_GATES
        if gated and G > 1 and r < G * H:
            head = f"gate {r // H} unit {r % H}"
        else:
            head = f"unit {r}"
        return head + "".join(f", col {c}" for c in i[1:])
    return where
