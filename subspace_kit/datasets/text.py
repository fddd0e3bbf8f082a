"""Word-level tokenisation for the small text sets: vocabulary from the training subset only.

Ids: ``0`` padding, ``1`` unknown word, then words by decreasing count (ties alphabetical).
Every sentence becomes ``max_len`` ids (truncated, or padded with 0 on the right); a sentence
with no tokens keeps one ``<unk>`` so that it is never all padding.
"""
from __future__ import annotations

import re
from collections import Counter

import torch

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(sentence: str) -> list[str]:
    """Lower-cased words (with an attached ``'s``, ``'t`` ...) and single punctuation marks."""
    return _TOKEN.findall(sentence.lower())


def build_vocab(token_lists, *, min_freq: int = 2, max_size: int | None = None) -> tuple[str, ...]:
    """``(PAD, UNK, words...)``: words seen at least ``min_freq`` times, most frequent first."""
    counts = Counter(w for tokens in token_lists for w in tokens)
    words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
    if max_size is not None:
        words = words[: max(max_size - 2, 0)]
    return (PAD, UNK, *words)


def encode(token_lists, vocab, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids ``(n, max_len)`` int64 and mask ``(n, max_len)`` bool (True on real tokens)."""
    index = {w: i for i, w in enumerate(vocab)}
    ids = torch.full((len(token_lists), max_len), PAD_ID, dtype=torch.int64)
    for row, tokens in enumerate(token_lists):
        seq = [index.get(w, UNK_ID) for w in tokens[:max_len]] or [UNK_ID]
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.int64)
    return ids, ids != PAD_ID
