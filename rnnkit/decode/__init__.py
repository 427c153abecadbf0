"""Decoding strategies for any model exposing ``init_state(batch)`` and ``step(x_t, state)``."""
from rnnkit.decode.sampling import filter_logits, pick, prime, sample

__all__ = ["filter_logits", "pick", "prime", "sample"]
