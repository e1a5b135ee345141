"""Byte-level BPE tokenizer (Python, NumPy in training, ``regex`` for pre-splitting).

>>> from minitf.tokenizer import BPETokenizer
>>> tok = BPETokenizer.train(["a tiny corpus", "a tiny test"], vocab_size=270,
...                          special_tokens=["<eos>"])
>>> tok.decode(tok.encode("a tiny text")) == "a tiny text"
True

Modules: :mod:`.bpe` (the tokenizer, encode/decode), :mod:`.train` (learning merges),
:mod:`.bulk_merge` (merging a frequent pair with NumPy), :mod:`.dropout` (BPE-dropout),
:mod:`.vocab` (ids and their checks), :mod:`.patterns` (pre-split regexes),
:mod:`.corpus` (streaming texts and files), :mod:`.serialization` (the JSON format),
:mod:`.huggingface` (reading ``tokenizer.json``), :mod:`.vocab_merges` (GPT-2's ``vocab.json`` and
``merges.txt``), :mod:`.cli` (command line).
:mod:`.wordpiece` is BERT's WordPiece tokenizer read from a ``tokenizer.json`` (:mod:`.wordpiece_file`
checks the file, :mod:`.bert_text` holds the normalizer and pre-tokenizer).
"""

from .bpe import BPETokenizer
from .patterns import GPT2_PATTERN, GPT4_PATTERN, PATTERNS, PatternTimeoutError
from .serialization import TokenizerFileError
from .vocab_merges import from_vocab_merges
from .wordpiece import Encoding, WordPieceTokenizer

__all__ = ["BPETokenizer", "TokenizerFileError", "GPT2_PATTERN", "GPT4_PATTERN", "PATTERNS",
           "PatternTimeoutError", "from_vocab_merges", "WordPieceTokenizer", "Encoding"]
