"""An off switch for a fast path, counted so that ``disabled()`` blocks nest (and a block inside
another one does not turn the path back on when it ends)."""
import contextlib


class Switch:
    def __init__(self, off=False):
        self.off = int(off)        # > 0: the path is off (open blocks, or off from the start)

    @contextlib.contextmanager
    def disabled(self):
        self.off += 1
        try:
            yield
        finally:
            self.off -= 1
