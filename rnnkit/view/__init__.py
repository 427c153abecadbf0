"""A local browser view of a trained run (``rnnkit view RUN``): the model's units over the text it
reads and writes, its predictions, and the run's training curves while it trains."""
