"""Task adapters: each plugs a task model into the one training loop (rnnkit.train.trainer)."""
