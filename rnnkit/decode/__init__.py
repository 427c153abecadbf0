"""Decoding strategies for any model exposing ``init_state(batch)`` and ``step(x_t, state)``."""
from rnnkit.decode.beam import beam_search, beam_search_batch
from rnnkit.decode.sampling import filter_logits, pick, prime, sample

__all__ = ["beam_search", "beam_search_batch", "filter_logits", "pick", "prime", "sample"]
