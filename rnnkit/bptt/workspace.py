"""Per-token buffers the BPTT node reuses from one training step to the next (CPU only).

A step of a layer allocates tens of MB of per-token arrays that only the node itself sees (the
cell's gate cache, the gradients of the pre-activations and of the inner states) and frees them
when the step is over. The C library hands such large blocks back to the operating system, and
the next step pays a page fault for every 4 KiB it touches again: about a fifth of a layer-normalised
LSTM's training step at B=32, T=100, H=256 (``benchmarks/options_speed.py``). The node gives its
private buffers back here instead, when nothing can read them any more:

- the backward's temporaries when the backward returns;
- the forward's cache when autograd frees the node that holds it (after a backward without
  ``retain_graph``, or when the graph is dropped; never while a backward can still run).

Buffers that leave the node (outputs, gradients it returns, per-step gates with
``return_sequences="all"``) are never taken from here. A buffer is handed out again for any
request of the same dtype whose size it fits (up to twice the size asked for); requests under
``Workspace.SMALL`` elements go to the allocator. At most
``max_bytes`` are kept (oldest dropped first); :func:`clear` empties the pool. On other devices
(whose allocators cache already) requests are plain ``new_empty``.
"""
import threading


class Workspace:
    # below this many elements a buffer comes from the allocator (which keeps small blocks
    # itself): a single step at batch 1 spent more in the pool's bookkeeping than in its maths
    SMALL = 1 << 14

    def __init__(self, max_bytes=1 << 30, max_buffers=64):
        self.max_bytes, self.max_buffers = max_bytes, max_buffers
        self._free = []                       # flat buffers, oldest first
        self._bytes = 0                       # what they hold
        self._lock = threading.Lock()

    def take(self, n, d, like):
        """An uninitialised (n, d) buffer of ``like``'s dtype and device."""
        need = n * d
        if like.device.type != "cpu" or need < self.SMALL:
            return like.new_empty(n, d)
        flat = None
        with self._lock:
            best = None
            for i, f in enumerate(self._free):
                if f.dtype == like.dtype and need <= f.numel() <= 2 * need:
                    if best is None or f.numel() < self._free[best].numel():
                        best = i
            if best is not None:
                flat = self._free.pop(best)
                self._bytes -= flat.numel() * flat.element_size()
        if flat is None:
            flat = like.new_empty(need)
        # flattened: under inference_mode a view keeps no _base, so give() may hold a 2-D view
        return flat.reshape(-1)[:need].view(n, d)

    def give(self, *tensors):
        """Return buffers from :meth:`take` that nothing will read again."""
        with self._lock:
            for t in tensors:
                flat = t._base if t._base is not None else t
                # an inference tensor (made under inference_mode) cannot be written outside it
                if flat.device.type == "cpu" and flat.numel() >= self.SMALL \
                        and not flat.is_inference():
                    self._free.append(flat)
                    self._bytes += flat.numel() * flat.element_size()
            while self._free and (self._bytes > self.max_bytes
                                  or len(self._free) > self.max_buffers):
                f = self._free.pop(0)
                self._bytes -= f.numel() * f.element_size()

    def clear(self):
        with self._lock:
            self._free.clear()
            self._bytes = 0

    def held_bytes(self):
        with self._lock:
            return self._bytes


class Taker:
    """Takes (n, d) buffers like ``x`` from a workspace and remembers them: ``.new_empty(n, d)``
    (what a cell's ``alloc_cache`` calls), ``.zeros(n, d)``, ``.copy(t)``; ``.taken`` to give back."""

    def __init__(self, ws, like):
        self.ws, self.like, self.taken = ws, like, []

    def new_empty(self, n, d):
        t = self.ws.take(n, d, self.like)
        self.taken.append(t)
        return t

    def zeros(self, n, d):
        return self.new_empty(n, d).zero_()

    def copy(self, src):
        return self.new_empty(*src.shape).copy_(src)


WORKSPACE = Workspace()


def clear():
    """Free every buffer the pool holds."""
    WORKSPACE.clear()
