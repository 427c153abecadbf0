"""What a recurrent layer stack computes at each step of one sequence, for the view: every
layer-direction's states and gates (the layers' ``return_sequences="all"``), one unit's values,
the gates' saturation, and the units that follow a selected span of the input.

After Karpathy, Johnson & Fei-Fei 2015, "Visualizing and Understanding Recurrent Networks": text
coloured by one cell's activation, and the fraction of steps each gate spends left-saturated
(a sigmoid below 0.1, a tanh below -0.9) or right-saturated (above 0.9).
Shapes: R layer-directions (L·D), T time, H hidden, G gates.
"""
from contextlib import contextmanager
from dataclasses import replace

import torch

from rnnkit.view.params import RequestError

# torch.nn's cells (the layer's ``mode``): each gate's name and squashing function, in the
# layout of Sequences.gates (LSTM i, f, g, o; GRU r, z, n; the plain RNN's one activation is h)
GATES = {"LSTM": (("i", "sigmoid"), ("f", "sigmoid"), ("g", "tanh"), ("o", "sigmoid")),
         "GRU": (("r", "sigmoid"), ("z", "sigmoid"), ("n", "tanh")),
         "RNN_TANH": (("h", "tanh"),), "RNN_RELU": (("h", "relu"),)}
SATURATED = {"sigmoid": (0.1, 0.9), "tanh": (-0.9, 0.9)}   # (left below, right above)


@contextmanager
def recording(layer):
    """Within the block every call of ``layer`` (an rnnkit recurrent layer) also records its
    :class:`rnnkit.layers.base.Sequences` in the list this yields, and returns what it returns
    outside it, so the model around the layer runs unchanged. Sequences are recorded whole:
    ``lengths=`` is dropped where every sequence has the full length (one text), and refused
    otherwise."""
    records, saved = [], layer.options

    def drop_full_lengths(module, args, kwargs):
        lengths = kwargs.get("lengths")
        if lengths is None:
            return None
        x = args[0]
        T = x.shape[1] if module.batch_first else x.shape[0]
        if not bool((torch.as_tensor(lengths) == T).all()):
            raise ValueError("recording needs sequences of the full length (one text at a time)")
        return args, {k: v for k, v in kwargs.items() if k != "lengths"}

    def keep_sequences(module, args, output):
        records.append(output[2])
        return output[:2]

    layer.options = replace(saved, return_sequences="all")
    hooks = (layer.register_forward_pre_hook(drop_full_lengths, with_kwargs=True),
             layer.register_forward_hook(keep_sequences))
    try:
        yield records
    finally:
        for h in hooks:
            h.remove()
        layer.options = saved


def gate_specs(layer):
    """[(name, squashing)] of the layer's gates: torch's cells by name; another cell's as g0, g1..
    (squashing decided from the values seen)."""
    known = GATES.get(getattr(layer, "mode", None))
    G = getattr(layer.cell, "N_GATES", 1)
    return list(known) if known and len(known) == G else [(f"g{k}", None) for k in range(G)]


def describe(layer):
    """What the page's unit picker offers for a layer stack."""
    states = list(getattr(layer.cell, "STATES", ("h",)))[:2]
    gates = [g for g, _ in gate_specs(layer) if g not in states]
    return {"cell": getattr(layer, "mode", None) or type(layer.cell).__name__,
            "layers": layer.num_layers, "directions": layer.num_directions,
            "hidden": layer.hidden_size, "quantities": states + gates}


class Trace:
    """One sequence read by a layer stack: each quantity (h, c, every gate) as (R, T, H)."""

    def __init__(self, layer, seqs):
        pick = (lambda t: t[:, 0]) if layer.batch_first else (lambda t: t[:, :, 0])  # batch row 0
        self.D, self.H = layer.num_directions, layer.hidden_size
        self.q = {"h": pick(seqs.h).detach().float()}                        # (R, T, H)
        if seqs.c is not None:
            self.q["c"] = pick(seqs.c).detach().float()
        gates = pick(seqs.gates).detach().float()                            # (R, T, G·H)
        self.kinds = {}
        for k, (name, kind) in enumerate(gate_specs(layer)):
            g = gates[..., k * self.H:(k + 1) * self.H]
            self.kinds[name] = kind or _squashing(g)
            self.q.setdefault(name, g)
        self.T = self.q["h"].shape[1]

    def unit(self, quantity, layer, direction, unit):
        """One unit's values over time (T,), with the scale the page colours them on."""
        R, H = self.q["h"].shape[0], self.q["h"].shape[2]
        if quantity not in self.q:
            raise RequestError(f"unknown quantity {quantity!r}; this model has {', '.join(self.q)}")
        if not 0 <= layer < R // self.D:
            raise RequestError(f"layer must lie in [0, {R // self.D - 1}], got {layer}")
        if not 0 <= direction < self.D:
            raise RequestError(f"direction must lie in [0, {self.D - 1}], got {direction}")
        if not 0 <= unit < H:
            raise RequestError(f"unit must lie in [0, {H - 1}] (hidden size {H}), got {unit}")
        v = self.q[quantity][layer * self.D + direction, :, unit]            # (T,)
        kind = self.kinds.get(quantity, "tanh" if quantity == "h" else None)
        scale = "unit" if kind == "sigmoid" else "signed"
        return {"values": rounded(v), "scale": scale,
                "max_abs": 1.0 if kind in SATURATED else max(float(v.abs().max()), 1e-6)}

    def saturation(self):
        """Per layer-direction and gate: the fraction of steps each unit spends left- and
        right-saturated, and their means (gates without saturation, e.g. ReLU, left out)."""
        out = []
        for r in range(self.q["h"].shape[0]):
            gates = []
            for name, kind in self.kinds.items():
                if kind not in SATURATED:
                    continue
                lo, hi = SATURATED[kind]
                g = self.q[name][r]                                          # (T, H)
                left, right = (g < lo).float().mean(0), (g > hi).float().mean(0)   # (H,)
                gates.append({"gate": name, "kind": kind, "left": rounded(left, 3),
                              "right": rounded(right, 3), "mean_left": float(left.mean()),
                              "mean_right": float(right.mean())})
            out.append({"layer": r // self.D, "direction": r % self.D, "gates": gates})
        return out

    def correlate(self, start, end, top=12):
        """The units whose values follow the selection steps [start, end) most closely: Pearson
        r of each unit of every quantity with the selection's indicator, the ``top`` by |r|."""
        if not 0 <= start < end <= self.T or end - start == self.T:
            raise RequestError(f"select part of the text: a span [start, end) inside [0, {self.T}] "
                               f"that is not all of it, got [{start}, {end})")
        s = torch.zeros(self.T)
        s[start:end] = 1
        s = (s - s.mean()) / s.std(unbiased=False)                           # (T,)
        found = []
        for name, x in self.q.items():                                       # (R, T, H)
            z = (x - x.mean(1, keepdim=True)) / x.std(1, unbiased=False, keepdim=True).clamp_min(1e-6)
            r = torch.einsum("rth,t->rh", z, s) / self.T                     # (R, H)
            k = min(top, r.numel())
            best = r.abs().flatten().topk(k).indices
            for i in best.tolist():
                R_, u = divmod(i, r.shape[1])
                found.append({"quantity": name, "layer": R_ // self.D, "direction": R_ % self.D,
                              "unit": u, "r": round(float(r.flatten()[i]), 4)})
        return sorted(found, key=lambda f: -abs(f["r"]))[:top]


def _squashing(g):
    """A cell's gate of unknown kind, judged by its values: within [0, 1] a sigmoid, within
    [-1, 1] a tanh, else none (no saturation)."""
    if g.numel() and float(g.min()) >= 0 and float(g.max()) <= 1:
        return "sigmoid"
    return "tanh" if g.numel() and float(g.abs().max()) <= 1 else None


def rounded(t, digits=4):
    return [round(v, digits) for v in t.tolist()]
