"""Gradient telemetry: the error signal ||dL/dh_t|| (and ||dL/dc_t||) that BPTT carries back in time.

The hand-written backward accumulates dL/dstate for every token in one buffer per state, so once
its reverse loop ends the per-step norms are one vectorised reduction: recording costs no extra
forward or backward pass, and when no recorder is active the backward pays one global read.

    with rnnkit.record_gradients(model) as rec:
        loss.backward()
    rec.norms["rnn.l0"]["h"]        # model.rnn's first layer: tensor (T,): ||dL/dh_t||, over the batch, for t = 0..T-1

dL/dh_t here is the total derivative (through the output at t and through every later step);
for an LSTM dL/dc_t likewise includes the path through h_t. Norms are Frobenius norms over the
batch rows active at t and the H units.
"""
import copy
import weakref

import torch

_active = None
_layers = weakref.WeakValueDictionary()   # id -> layer, for the compiled path's tags (ints)

STATE_NAMES = {1: ("h",), 2: ("h", "c")}


def current():
    """The active recorder, or None (the common case)."""
    return _active


TAG = "_rnnkit_tag"    # a layer's id in a tensor of its own: what a compiled graph carries


def register_layer(layer):
    """Make ``layer`` findable by its id (every rnnkit layer, when made or copied), and give
    it its id as a tensor (a plain attribute: in no state_dict, moved by no .to())."""
    _layers[id(layer)] = layer
    layer.__dict__[TAG] = torch.tensor([id(layer)], dtype=torch.int64, device="cpu")   # (not
    # the default device: a layer made under torch.device("meta") gave the operator a meta tag,
    # which ran its shapes alone)


def deep_copy(layer, memo):
    """``copy.deepcopy(layer)`` as deepcopy makes it (the state copied, then ``__setstate__``,
    where a copy registers itself as a layer of its own), for the layers' ``__deepcopy__``: the
    class torch's parametrize makes (ParametrizedGRU, after register_parametrization) deep-copies
    by setting ``__dict__`` where no class above it has a ``__deepcopy__``, so such a copy kept
    the original's tag, and a compiled backward's gradient records named the original."""
    from torch.nn.utils.parametrize import is_parametrized
    if not is_parametrized(layer):   # deepcopy's own way (a subclass's __reduce__ and
        return copy._reconstruct(layer, memo, *layer.__reduce_ex__(4))   # __getstate__ kept)
    cls = type(layer)
    replica = cls.__new__(cls)
    memo[id(layer)] = replica
    replica.__setstate__(copy.deepcopy(layer.__dict__, memo))   # (parametrize's __getstate__
    return replica                                              # refuses)


def tag_ids(tag):
    """A tag (layer, layer index, direction) as a custom operator can carry it: ints and a
    tensor, the compiled path's backward getting its records labelled as eager's
    (:func:`from_ids`). While dynamo traces, the layer's id travels in its tensor (a graph
    input) and the ints hold -1 in its place: an id among the ints was a constant of the graph,
    dynamo guarded on it, and every new layer (a model built again, per fold or trial) compiled
    again, the 9th failing under fullgraph."""
    if tag is None:
        return [], None
    module, layer, direction = tag
    if torch.compiler.is_compiling():
        return [-1, int(layer), int(direction)], getattr(module, TAG, None)
    return [id(module), int(layer), int(direction)], None


def from_ids(ids, who=None):
    """The tag :func:`tag_ids` made, or None (no tag, or its layer is gone)."""
    if not ids:
        return None
    key = ids[0] if ids[0] != -1 else (None if who is None else int(who[0]))
    module = _layers.get(key)
    return None if module is None else (module, ids[1], ids[2])


class GradientRecorder:
    """Collects per-step gradient norms from every rnnkit layer that runs backward while active.

    model: optional module whose submodule names label the records ("encoder.rnn.l0_reverse";
    "l0" for the model itself; a layer added to it later too); layers outside it are labelled
    by class name, a second one of a class apart ("lstm.l0", "lstm#2.l0"); a cell as a layer of
    one step ("lstmcell.l0"). A layer that runs several times before the backward (a decoder
    stepped in a loop) gets one record per run, in ``runs[key]``, in the order they ran.
    """

    def __init__(self, model=None):
        self._model = model
        self._names = {id(m): n for n, m in model.named_modules()} if model is not None else {}
        self._anon = {}            # id -> the label of a layer outside the model
        self._base = None          # in a backward: where its runs go in each key's list
        self.runs = {}

    def _label(self, module):
        i = id(module)
        if i not in self._names and self._model is not None:   # added since the recorder began
            self._names.update((id(m), n) for n, m in self._model.named_modules()
                               if id(m) not in self._names)
        if i in self._names:
            return self._names[i]
        if module is None:
            return ""
        if i not in self._anon:
            base = type(module).__name__.lower()
            same = sum(1 for v in self._anon.values() if v.split("#")[0] == base)
            self._anon[i] = base if not same else f"{base}#{same + 1}"
        return self._anon[i]

    def __enter__(self):
        global _active
        if _active is not None:
            raise RuntimeError("a GradientRecorder is already active")
        _active = self
        return self

    def __exit__(self, *exc):
        global _active
        _active = None
        return False

    def record(self, tag, sched, dS, names=None):
        """Norms of dS (one (N, ·) buffer per state, named by ``names``, default h, c)."""
        module, layer, direction = tag if tag is not None else (None, 0, 0)
        name = self._label(module)
        key = (f"{name}." if name else "") + f"l{layer}" + ("_reverse" if direction else "")
        per_state = {}
        for sname, d in zip(names or STATE_NAMES[len(dS)], dS):
            # in float64: float32 squares vanish below 1e-23 (a norm read as 0 where it was
            # 1e-24) and overflow from 1.8e19 (inf where it was finite)
            if sched.uniform:
                n = torch.linalg.vector_norm(d.detach().view(sched.T, sched.B, -1), dim=(1, 2),
                                             dtype=torch.float64)
            else:
                n = torch.stack([torch.linalg.vector_norm(p, dtype=torch.float64)
                                 for p in d.detach().split(sched.sizes)])
            per_state[sname] = n                                        # (T,) float64
        # a backward reaches a layer's runs last first: within one backward each goes before
        # those it recorded already; a later backward's come after an earlier one's
        if self._base is None:
            self._base = {k: len(v) for k, v in self.runs.items()}
            try:
                torch.autograd.Variable._execution_engine.queue_callback(self._end_backward)
            except RuntimeError:   # not inside a backward: a record of its own
                self._base = None
                self.runs.setdefault(key, []).append(per_state)
                return
        self.runs.setdefault(key, []).insert(self._base.get(key, 0), per_state)

    def _end_backward(self):
        self._base = None

    @property
    def norms(self):
        """The last run of each layer-direction (the last forward before the backward):
        {key: {"h": (T,), "c": (T,)}}."""
        return {k: v[-1] for k, v in self.runs.items()}


def record_gradients(model=None):
    """Context manager: ``with record_gradients(model) as rec: loss.backward()``."""
    return GradientRecorder(model)
