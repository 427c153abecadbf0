"""The plain-autograd oracle: the same equations stepped in a Python loop, autograd doing BPTT.

Slow and obviously right: each step calls the cell's ``reference_step`` (written straight from
its equations), padding is handled with a mask, and the reverse direction flips each sequence
within its own length. Tests compare the hand-written BPTT against it; it is also the fallback to
reach for when debugging a new cell.
"""
import torch



def reverse_padded(x, lengths):
    """Reverse each sequence of x (T, B, ·) within its own length; padding stays in place."""
    T, B = x.shape[:2]
    t = torch.arange(T, device=x.device).unsqueeze(1)                      # (T, 1)
    L = lengths.to(x.device).unsqueeze(0)                                  # (1, B)
    idx = torch.where(t < L, L - 1 - t, t)                                 # (T, B)
    return x.gather(0, idx.unsqueeze(-1).expand_as(x))


def run_direction(cell, x, lengths, h0, w_ih, w_hh, b_ih, b_hh, keep=None, params=()):
    """x (T, B, I) padded, lengths (B,), h0 tuple of (B, H). Returns out (T, B, H), finals.

    keep: a list to append each step's new state tuple to (for gradient hooks in tests).
    """
    state = h0
    outs = []
    for t in range(x.shape[0]):
        gi = x[t] @ w_ih.t() + (0 if b_ih is None else b_ih)
        new = cell.reference_step(gi, state, w_hh, b_hh, params=params)
        live = (t < lengths).to(x.dtype).unsqueeze(1)                       # (B, 1)
        if keep is not None:
            keep.append(new)
        state = tuple(live * n + (1 - live) * s for n, s in zip(new, state))
        outs.append(live * state[0])
    return torch.stack(outs), state


def reference_rnn(module, x, lengths=None, hx=None, keep=None):
    """Run an rnnkit/torch.nn RNN module's weights through the oracle.

    x (T, B, I) time-major and padded; lengths (B,) or None for full length; hx as the module
    takes it (or None). Returns (output (T, B, D·H), finals) with finals a tuple of (L·D, B, H).
    Inter-layer dropout is not applied (compare in eval mode). keep: a dict that receives each
    layer-direction's per-step states, keyed "l{layer}" / "l{layer}_reverse" (the reverse
    direction's list is in processing order, last time step first).
    """
    cell = module.cell
    T, B = x.shape[:2]
    lengths = torch.full((B,), T, device=x.device) if lengths is None else lengths
    D, L = 2 if module.bidirectional else 1, module.num_layers
    if hx is None:
        hx = tuple(x.new_zeros(L * D, B, H) for H in module.state_sizes)
    elif isinstance(hx, torch.Tensor):
        hx = (hx,)
    finals = [[] for _ in hx]
    layer_in = x
    for layer in range(L):
        outs = []
        for d in range(D):
            sfx = f"l{layer}" + ("_reverse" if d else "")
            w = [getattr(module, f"{k}_{sfx}", None) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            h0 = tuple(h[layer * D + d] for h in hx)
            inp = reverse_padded(layer_in, lengths) if d else layer_in
            steps = None if keep is None else keep.setdefault(sfx, [])
            params = tuple(getattr(module, f"{n}_{sfx}") for n in cell.PARAMS)
            out, last = run_direction(cell, inp, lengths, h0, *w, keep=steps, params=params)
            outs.append(reverse_padded(out, lengths) if d else out)
            for k, s in enumerate(last):
                finals[k].append(s)
        layer_in = torch.cat(outs, -1)
    return layer_in, tuple(torch.stack(f) for f in finals)


def reference_direction(cell, sched, x, w_ih, w_hh, b_ih, b_hh, h0, opts, inits=(), params=()):
    """One layer-direction of a full-length batch with loop-level options, in plain autograd.

    Takes exactly what the BPTT node takes (tokens (T·B, ·), the same masks in ``opts``), so a
    test can capture the node's inputs and replay them here. Returns (out (T·B, H), finals).
    """
    T, B = sched.T, sched.B
    if w_ih is None:
        gi = x
    else:
        gi = x @ w_ih.t() + (0 if b_ih is None else b_ih)
        if cell.FOLD_HH_BIAS and b_hh is not None:
            gi = gi + b_hh
    b_step = None if cell.FOLD_HH_BIAS else b_hh
    split = lambda t: None if t is None else t.view(T, B, -1)               # noqa: E731
    gi, keep = split(gi), split(opts.keep)
    zone = [split(z) for z in opts.zoneout] if opts.zoned else None
    state, outs = tuple(h0), [None] * T
    for t in (range(T - 1, -1, -1) if sched.reverse else range(T)):
        if keep is not None:
            state = tuple(keep[t] * s + (1 - keep[t]) * i for s, i in zip(state, inits))
        hrec = state[0] if opts.rec_mask is None else state[0] * opts.rec_mask
        new = cell.reference_step(gi[t], state, w_hh, b_step, hrec=hrec, params=params)
        if zone is not None:
            new = tuple(n if z is None else z[t] * s + (1 - z[t]) * n
                        for n, s, z in zip(new, state, zone))
        state = new
        outs[t] = state[0]
    return torch.cat(outs), state
