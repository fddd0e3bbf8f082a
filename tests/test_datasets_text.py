"""SST2-1k's offline substitute (the vaderSentiment sdist) and the word-level tokenisation."""
from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import replace

import pytest
import torch

from subspace_kit.datasets import ChecksumMismatch, DataUnavailable, download, load
from subspace_kit.datasets.sst2 import SUBSTITUTE
from subspace_kit.datasets.text import PAD_ID, UNK_ID, build_vocab, encode, tokenize

SDIST = "vaderSentiment-3.3.2.tar.gz"
# (rating, sentence) in the ground-truth file's layout: id <TAB> mean rating <TAB> sentence
RATINGS = [(2.3, "A charming, funny film."), (3.5, "Gorgeous and witty."), (0.4, "It exists."),
           (1.0, "Good enough fun."), (-2.1, "Dull, dull, dull."), (-0.9, "Somewhat flat."), (-1.0, "Bad fun.")]


def tar_gz(members: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def fake_sdist(ratings=RATINGS) -> bytes:
    """An sdist laid out like vaderSentiment 3.3.2's, with a tiny ratings file inside."""
    lines = "".join(f"{i + 1}\t{r}\t{s}\r\n" for i, (r, s) in enumerate(ratings))
    inner = tar_gz({"hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt": lines.encode(),
                    "hutto_ICWSM_2014/tweets_GroundTruth.txt": b"1\t0.5\tignored\n"})
    return tar_gz({"vaderSentiment-3.3.2/setup.py": b"",
                   "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz": inner})


@pytest.fixture
def substitute_root(tmp_path, monkeypatch):
    """A cache root holding the fake sdist, registered as the published one for this test."""
    payload = fake_sdist()
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / SDIST).write_bytes(payload)
    monkeypatch.setitem(download.REMOTES, "vader-sdist",
                        replace(download.REMOTES["vader-sdist"], checksum="sha256:" + hashlib.sha256(payload).hexdigest()))
    return tmp_path


def test_substitute_labels_by_rating_sign_drops_weak_ratings_and_balances(substitute_root):
    data = load("sst2-1k", root=substitute_root, n=4, source="substitute", min_freq=1, max_len=6)
    vocab = data.meta["vocab"]
    sentences = [" ".join(vocab[i] for i in row if i != PAD_ID) for row in data.X.tolist()]
    # positives and negatives interleaved in file order; |rating| < 1 ("It exists.", "Somewhat flat.") dropped
    assert sentences == ["a charming , funny film .", "dull , dull , dull .", "gorgeous and witty .", "bad fun ."]
    assert data.labels.tolist() == [1, 0, 1, 0]
    assert data.meta["substitute"] and data.source.startswith(SUBSTITUTE)
    assert data.meta["vocab_size"] == len(vocab) and data.meta["max_len"] == 6


def test_auto_falls_back_to_the_named_substitute_with_a_warning(substitute_root):
    with pytest.warns(UserWarning, match="substitute for SST-2"):
        data = load("sst2-1k", root=substitute_root, download=False, n=4)
    assert data.meta["substitute"] and "vaderSentiment" in data.source


def test_glue_only_does_not_fall_back(substitute_root):
    with pytest.raises(DataUnavailable, match="SST-2.zip"):
        load("sst2-1k", root=substitute_root, download=False, source="glue")


def test_missing_substitute_says_how_to_fetch_it(tmp_path):
    with pytest.raises(DataUnavailable) as err:
        load("sst2-1k", root=tmp_path, download=False)
    message = str(err.value)
    assert "SST-2.zip" in message and "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2" in message
    assert str(tmp_path / "sst2") in message


def test_a_different_sdist_is_rejected_by_its_sha256(tmp_path):
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / SDIST).write_bytes(fake_sdist())  # the published sha256 applies
    with pytest.raises(ChecksumMismatch, match="5d7c06e0"):
        load("sst2-1k", root=tmp_path, source="substitute")


def test_too_many_substitute_sentences_is_a_value_error(substitute_root):
    assert load("sst2-1k", root=substitute_root, n=5, source="substitute").labels.tolist() == [1, 0, 1, 0, 1]
    with pytest.raises(ValueError, match="n must be at most 5"):
        load("sst2-1k", root=substitute_root, n=6, source="substitute")


def test_real_substitute_gives_1000_balanced_sentences():
    sdist = download.data_root() / "sst2" / SDIST
    if not sdist.exists():
        pytest.skip(f"the vaderSentiment sdist is not at {sdist} (the set-up fetches it)")
    data = load("sst2-1k", source="substitute")
    assert data.X.shape == (1000, 32) and data.labels.bincount().tolist() == [500, 500]
    assert 1000 < data.meta["vocab_size"] < 3000
    assert data.extra["mask"].any(dim=1).all()


# ------------------------------------------------------------------------------ tokenisation
def test_tokenize_keeps_contractions_and_splits_punctuation():
    assert tokenize("It's a GREAT film, isn't it?") == ["it's", "a", "great", "film", ",", "isn't", "it", "?"]


def test_vocab_orders_by_count_then_alphabet_and_drops_rare_words():
    vocab = build_vocab([["b", "a", "c"], ["a", "b", "d"], ["a"]], min_freq=2)
    assert vocab == ("<pad>", "<unk>", "a", "b")
    assert build_vocab([["b", "a", "c"]], min_freq=1, max_size=4) == ("<pad>", "<unk>", "a", "b")


def test_encode_pads_truncates_and_never_leaves_a_sentence_empty():
    vocab = ("<pad>", "<unk>", "good", "film")
    ids, mask = encode([["good", "film", "good"], ["bad"], []], vocab, max_len=2)
    assert ids.tolist() == [[2, 3], [UNK_ID, PAD_ID], [UNK_ID, PAD_ID]]
    assert mask.tolist() == [[True, True], [True, False], [True, False]]
    assert ids.dtype == torch.int64
