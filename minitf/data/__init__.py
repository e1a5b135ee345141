"""Data layer of minitf: corpora, the synthetic number task, and padded batches.

Produces plain NumPy int64 arrays; it does not depend on the autograd engine.
"""

from minitf.data.batching import (
    Batch,
    Example,
    TokenBatcher,
    Tokenizer,
    drop_words,
    encode_pairs,
    make_batch,
    padding_efficiency,
    pair_fits,
    shard_batch,
    token_batches,
)
from minitf.data.corpus import (
    CorpusFormatError,
    ParallelCorpus,
    read_lines,
    read_parallel,
    read_tsv,
)
from minitf.data.digits import make_digits
from minitf.data.synthetic import (
    english_number,
    german_number,
    number_splits,
    number_translation_task,
    sample_distinct_numbers,
)

__all__ = [
    "Batch",
    "CorpusFormatError",
    "Example",
    "ParallelCorpus",
    "TokenBatcher",
    "Tokenizer",
    "drop_words",
    "encode_pairs",
    "english_number",
    "german_number",
    "make_batch",
    "make_digits",
    "number_splits",
    "number_translation_task",
    "padding_efficiency",
    "pair_fits",
    "read_lines",
    "read_parallel",
    "read_tsv",
    "sample_distinct_numbers",
    "shard_batch",
    "token_batches",
]
