"""Fashion-MNIST and the SST-2 substitute downloaded and verified (notebook 13's data on Binder),
``python -m subspace_kit.datasets.prefetch``, and the leftovers of a download killed with -9.

Served from 127.0.0.1 by the CIFAR tests' ``LocalServer``; the published checksums are replaced
for one test at a time by those of files the test builds, except where a test checks the real ones.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from subspace_kit.datasets import ChecksumMismatch, DataUnavailable, download, fashion_mnist, load, prefetch
from test_datasets_download import LocalServer, leftovers, unused_url
from test_datasets_text import SDIST, fake_sdist

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[1]
IMAGES_KEY, LABELS_KEY = fashion_mnist.FILES["images"], fashion_mnist.FILES["labels"]


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def idx_bytes(array: np.ndarray) -> bytes:
    header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def gz(raw: bytes, *, mtime: int = 0, name: str | None = None) -> bytes:
    """``raw`` gzip-compressed with the header fields the official and Debian's copies differ in."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=name or "", mode="wb", fileobj=buffer, mtime=mtime) as fh:
        fh.write(raw)
    return buffer.getvalue()


def publish(monkeypatch, key: str, raw: bytes) -> None:
    """``raw`` becomes the published uncompressed content of ``REMOTES[key]`` for this test."""
    monkeypatch.setitem(download.REMOTES, key, replace(
        download.REMOTES[key], checksum="sha256:" + hashlib.sha256(raw).hexdigest(), content_size=len(raw)))


@pytest.fixture
def fashion(server, monkeypatch, tmp_path):
    """A small Fashion-MNIST served as the official files (gzip headers with names), Debian's absent."""
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", tmp_path / "not-installed")
    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 256, (15, 28, 28)), rng.integers(0, 10, 15)
    raws = {IMAGES_KEY: idx_bytes(images), LABELS_KEY: idx_bytes(labels)}
    for key, raw in raws.items():
        publish(monkeypatch, key, raw)
        filename = download.REMOTES[key].filename
        server.files[filename] = gz(raw, mtime=1504176606, name=filename[:-3])
    return images, labels, raws


# ------------------------------------------------------------------------------ Fashion-MNIST
def test_fashion_mnist_is_downloaded_verified_and_cached(server, fashion, tmp_path):
    images, labels, _ = fashion
    root = tmp_path / "cache"
    data = load("fashion-mnist-5k", root=root, mirror=server.url, n=12, progress=False)
    assert sorted(server.requests) == ["/mirror/train-images-idx3-ubyte.gz", "/mirror/train-labels-idx1-ubyte.gz"]
    assert data.labels.tolist() == labels[:12].tolist() and data.X.shape == (12, 784)
    flat = torch.as_tensor(images[:12].reshape(12, -1), dtype=torch.float32) / 255
    assert torch.allclose(data.X, (flat - flat.mean()) / flat.std(), atol=1e-5)
    assert leftovers(root / "fashion-mnist") == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    again = load("fashion-mnist-5k", root=root, mirror=server.url, n=12, download=False)
    assert len(server.requests) == 2 and torch.equal(again.X, data.X)


def test_fashion_mnist_accepts_another_gzip_header_of_the_same_content(server, fashion, tmp_path):
    """Debian's copies are the official content recompressed without name and time: both verify."""
    _, labels, raws = fashion
    for key, raw in raws.items():
        server.files[download.REMOTES[key].filename] = gz(raw, mtime=0)
    assert load("fashion-mnist-5k", root=tmp_path, mirror=server.url, n=3, progress=False).labels.tolist() == \
        labels[:3].tolist()


def test_fashion_mnist_other_content_or_a_gzip_bomb_is_refused_and_nothing_kept(server, fashion, tmp_path):
    _, _, raws = fashion
    name = download.REMOTES[IMAGES_KEY].filename
    server.files[name] = gz(raws[IMAGES_KEY][:-1] + b"\x01")
    with pytest.raises(ChecksumMismatch, match="uncompressed|does not match"):
        load("fashion-mnist-5k", root=tmp_path, mirror=server.url, progress=False)
    assert name not in leftovers(tmp_path / "fashion-mnist")
    server.files[name] = gz(raws[IMAGES_KEY] + bytes(10_000_000))  # decompresses past the published size
    with pytest.raises(ChecksumMismatch, match="more than the published"):
        load("fashion-mnist-5k", root=tmp_path, mirror=server.url, progress=False)
    server.files[name] = gz(raws[IMAGES_KEY])[:-20]  # a cut gzip stream, served whole
    with pytest.raises(ChecksumMismatch, match="incomplete"):
        load("fashion-mnist-5k", root=tmp_path, mirror=server.url, progress=False)
    assert not [p for p in leftovers(tmp_path / "fashion-mnist") if p.startswith(".")]


@pytest.mark.skipif(not (fashion_mnist.DEBIAN_FOLDER / fashion_mnist.IMAGES).exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_files_have_the_published_uncompressed_checksums():
    for key in (IMAGES_KEY, LABELS_KEY):
        remote = download.REMOTES[key]
        assert download.file_checksum(fashion_mnist.DEBIAN_FOLDER / remote.filename, remote) == remote.checksum


def test_fashion_mnist_offline_error_names_the_files_and_the_folder(fashion, tmp_path):
    with pytest.raises(DataUnavailable) as err:
        load("fashion-mnist-5k", root=tmp_path, mirror=unused_url(), progress=False)
    assert "apt-get install dataset-fashion-mnist" in str(err.value)
    assert str(tmp_path / "fashion-mnist") in str(err.value)


# ------------------------------------------------------------------------------ SST-2 substitute
def test_substitute_sdist_is_downloaded_and_verified(server, monkeypatch, tmp_path):
    payload = fake_sdist()
    server.files[SDIST] = payload
    with pytest.raises(ChecksumMismatch, match=download.REMOTES["vader-sdist"].checksum):
        load("sst2-1k", root=tmp_path, mirror=server.url, n=4, source="substitute", progress=False)
    assert leftovers(tmp_path / "sst2") == []  # the real sha256 refused the fake sdist
    monkeypatch.setitem(download.REMOTES, "vader-sdist", replace(
        download.REMOTES["vader-sdist"], checksum="sha256:" + hashlib.sha256(payload).hexdigest(), size=len(payload)))
    data = load("sst2-1k", root=tmp_path, mirror=server.url, n=4, source="substitute", min_freq=1, progress=False)
    assert data.labels.tolist() == [1, 0, 1, 0] and data.meta["substitute"]
    assert leftovers(tmp_path / "sst2") == [SDIST]


# ------------------------------------------------------------------------------ prefetch
def test_prefetch_fetches_notebook_13s_data_and_reports(server, fashion, monkeypatch, tmp_path, capsys):
    payload = fake_sdist()
    server.files[SDIST] = payload
    monkeypatch.setitem(download.REMOTES, "vader-sdist", replace(
        download.REMOTES["vader-sdist"], checksum="sha256:" + hashlib.sha256(payload).hexdigest()))
    assert prefetch.main(["--root", str(tmp_path / "c"), "--mirror", server.url]) == 0
    out = capsys.readouterr().out
    assert f"fashion-mnist: ready at {tmp_path / 'c' / 'fashion-mnist'}" in out
    assert f"sst2-substitute: ready at {tmp_path / 'c' / 'sst2' / SDIST}" in out
    assert (tmp_path / "c" / "sst2" / SDIST).read_bytes() == payload
    assert prefetch.main(["--root", str(tmp_path / "d"), "--mirror", unused_url()]) == 1
    assert capsys.readouterr().out.count("NOT available") == 2


# ------------------------------------------------------------------------------ killed downloads
def test_a_download_killed_with_sigkill_leaves_a_part_file_that_the_next_download_removes(server, monkeypatch,
                                                                                           tmp_path):
    payload = os.urandom(300_000)
    server.files["blob.bin"] = payload
    server.stall.add("blob.bin")
    checksum = "md5:" + hashlib.md5(payload).hexdigest()
    code = ("import sys; from pathlib import Path; from subspace_kit.datasets import download as d; "
            f"d.fetch(d.Remote('blob.bin', 'unused', {checksum!r}), Path(sys.argv[1]), mirror=sys.argv[2])")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), server.url], env=env)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".blob.bin.*.part")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.1)
    parts = list(tmp_path.glob(".blob.bin.*.part"))
    time.sleep(0.3)  # let the half body land in the file
    child.kill()
    child.wait()
    assert len(parts) == 1 and parts[0].exists(), "the killed download should have left its .part file"

    live = tmp_path / f".blob.bin.{download._owner_tag().split('.')[0]}.{os.getppid()}.live.part"
    live.write_bytes(b"a download still running in another process")
    old = tmp_path / ".blob.bin.abc123.part"  # a name from before the host/pid tag, idle for a day
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 86400, time.time() - 86400))
    server.stall.clear()
    remote = download.Remote("blob.bin", "unused", checksum)
    assert download.fetch(remote, tmp_path, mirror=server.url).read_bytes() == payload
    assert sorted(leftovers(tmp_path)) == sorted(["blob.bin", live.name])


def test_an_unpacking_folder_of_a_dead_process_is_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = download._owner_tag().split(".")[0]
    stale = tmp_path / f".SST-2.{host}.{int(dead.stdout)}.k2j3.extracting"
    (stale / "SST-2").mkdir(parents=True)
    (stale / "SST-2" / "train.tsv").write_text("half")
    removed = download.clean_stale(tmp_path, "SST-2")
    assert removed == [stale] and not stale.exists()
