"""Corpora and their preparation: vocabularies, text readers and batching, named data sets."""
from rnnkit.data.datasets import DATASETS, DataSet, fetch, resolve
from rnnkit.data.text import DataError, StreamBatches, read_text, split_ids
from rnnkit.data.vocab import Vocab, tokenize

__all__ = ["DATASETS", "DataSet", "fetch", "resolve", "DataError", "StreamBatches", "read_text",
           "split_ids", "Vocab", "tokenize"]
