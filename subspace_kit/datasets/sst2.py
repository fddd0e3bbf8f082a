"""SST2-1k: 1,000 labelled movie-review sentences for the paper's Transformer experiment.

Two sources, named in ``Dataset.source`` and ``meta["substitute"]``:

- ``"glue"``: the first ``n`` training sentences of SST-2 from GLUE's ``SST-2.zip``, downloaded
  on first use into ``<cache root>/sst2/`` and checked against its md5 (see ``download``).
- ``"substitute"``: offline stand-in. The ``vaderSentiment`` 3.3.2 sdist from PyPI carries the
  10,605 Rotten-Tomatoes sentences SST was built from, each with a mean crowd rating in
  [-4, 4] (Hutto & Gilbert 2014, ``movieReviewSnippets_GroundTruth.txt``). Label: the sign of
  the rating, sentences with |rating| < 1 dropped. The file lists positives first, so we take
  the first ``n/2`` of each class in file order and interleave them (pos, neg, pos, ...).
  The sdist lives at ``<cache root>/sst2/vaderSentiment-3.3.2.tar.gz``: put there by the set-up
  (``python -m subspace_kit.datasets.prefetch``), or downloaded from PyPI's file host on first
  use (``download=True``), and verified by sha256 either way.

``source="auto"`` (default) uses GLUE when it is cached or can be downloaded, else the
substitute, with a warning naming it.
"""
from __future__ import annotations

import io
import tarfile
import warnings

import torch

from .._validation import check_choice, check_int_range
from .base import Dataset, one_hot
from .download import REMOTES, DataUnavailable, data_root, fetch, fetch_and_extract
from .text import PAD_ID, build_vocab, encode, tokenize

SOURCES = ("auto", "glue", "substitute")
CLASSES = ("negative", "positive")
SUBSTITUTE = ("substitute for SST-2: Rotten-Tomatoes sentences with crowd ratings from the vaderSentiment "
              "3.3.2 sdist (Hutto & Gilbert 2014), label = sign of rating, |rating| >= 1")
_INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
_RATINGS_FILE = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"


def read_glue(folder, n: int, *, download: bool, mirror: str | None, progress: bool):
    """The first ``n`` (sentence, label) pairs of GLUE SST-2's ``train.tsv``."""
    unpacked = fetch_and_extract("sst2", folder, "SST-2", download=download, mirror=mirror, progress=progress)
    lines = (unpacked / "train.tsv").read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != ["sentence", "label"]:
        raise DataUnavailable(f"{unpacked / 'train.tsv'} is not GLUE's SST-2 train.tsv (unexpected header)")
    rows = [line.rsplit("\t", 1) for line in lines[1 : n + 1]]
    if len(rows) < n:
        raise ValueError(f"n must be at most the {len(rows)} sentences in {unpacked / 'train.tsv'}; got n={n}")
    return [s.strip() for s, _ in rows], [int(y) for _, y in rows]


def read_substitute(folder, n: int, *, download: bool = False, mirror: str | None = None, progress: bool = False):
    """``n`` balanced (sentence, label) pairs from the vaderSentiment sdist (see module doc)."""
    sdist = fetch(REMOTES["vader-sdist"], folder, download=download, mirror=mirror, progress=progress)
    with tarfile.open(sdist) as outer:
        inner_bytes = _member_bytes(outer, _INNER_ARCHIVE, sdist)
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        text = _member_bytes(inner, _RATINGS_FILE, sdist).decode("utf-8")
    by_class = ([], [])
    for line in text.splitlines():
        fields = line.strip("\r").split("\t")
        if len(fields) != 3:
            continue
        rating = float(fields[1])
        if abs(rating) >= 1:
            by_class[int(rating > 0)].append(fields[2].strip())
    half = (n + 1) // 2  # positives; the n - half negatives never outnumber them
    most = min(2 * len(by_class[1]), 2 * len(by_class[0]) + 1)
    if n > most:
        raise ValueError(f"n must be at most {most} for the substitute; got n={n}")
    positives, negatives = by_class[1][:half], by_class[0][: n - half]
    sentences, labels = [], []
    for i, sentence in enumerate(positives):  # interleaved, so any prefix stays balanced
        sentences.append(sentence)
        labels.append(1)
        if i < len(negatives):
            sentences.append(negatives[i])
            labels.append(0)
    return sentences, labels


def _member_bytes(tar: tarfile.TarFile, name: str, where) -> bytes:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise DataUnavailable(f"{where} does not contain {name}; is it the vaderSentiment 3.3.2 sdist?") from None
    return tar.extractfile(member).read()


def load_sst2_1k(*, root=None, download: bool = True, mirror: str | None = None, n: int = 1000,
                 max_len: int = 32, min_freq: int = 2, source: str = "auto", progress: bool = True) -> Dataset:
    """``n`` sentences as token ids, ready for ``models.TextTransformer``.

    ``X`` (n, max_len) int64 token ids, 0 = padding (the model derives its mask from it);
    ``extra["mask"]`` (n, max_len) bool, True on real tokens; ``Y`` one-hot (n, 2), label 1 =
    positive. ``meta``: ``vocab`` (built from these n sentences, words seen ``min_freq`` times
    or more), ``vocab_size``, ``pad_id``, ``max_len``, ``classes``, ``substitute``.
    """
    n = check_int_range("n", n, 2)
    max_len = check_int_range("max_len", max_len, 1)
    min_freq = check_int_range("min_freq", min_freq, 1)
    source = check_choice("source", source, SOURCES)
    folder = data_root(root) / "sst2"
    sentences = None
    if source in ("auto", "glue"):
        try:
            sentences, labels = read_glue(folder, n, download=download, mirror=mirror, progress=progress)
            origin = f"SST-2 (GLUE distribution), first {n} training sentences"
        except DataUnavailable as exc:
            if source == "glue":
                raise
            glue_problem = exc
    if sentences is None:
        try:
            sentences, labels = read_substitute(folder, n, download=download, mirror=mirror, progress=progress)
        except DataUnavailable as exc:
            if source == "substitute":
                raise
            raise DataUnavailable(f"SST-2 is unavailable ({glue_problem}) and so is its offline substitute "
                                  f"({exc})") from exc
        origin = f"{SUBSTITUTE}; {n} sentences, balanced"
        if source == "auto":
            warnings.warn(f"SST-2 could not be used ({glue_problem}); using the {SUBSTITUTE}", stacklevel=3)
    tokens = [tokenize(s) for s in sentences]
    vocab = build_vocab(tokens, min_freq=min_freq)
    X, mask = encode(tokens, vocab, max_len)
    labels = torch.tensor(labels, dtype=torch.int64)
    meta = {"vocab": vocab, "vocab_size": len(vocab), "pad_id": PAD_ID, "max_len": max_len,
            "classes": CLASSES, "substitute": origin.startswith(SUBSTITUTE)}
    return Dataset(X, one_hot(labels, 2), labels, "sst2-1k", source=origin, extra={"mask": mask}, meta=meta)
