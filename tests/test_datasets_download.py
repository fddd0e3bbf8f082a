"""Downloaded data sets (CIFAR-10, GLUE SST-2) through the real code path, served from 127.0.0.1.

Each test builds a small archive in the official layout, registers its checksum in
``download.REMOTES`` (the real entries stay untouched outside the test), serves it from a local
threaded HTTP server and points the loader at it with ``mirror=``.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import socket
import tarfile
import threading
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from subspace_kit.datasets import ChecksumMismatch, DataUnavailable, UnsafeArchive, download, load

pytestmark = pytest.mark.timeout(60)


# ------------------------------------------------------------------------------ local server
class LocalServer:
    """Serves ``files`` (name -> bytes) at ``url``; records request paths; can cut bodies short
    (``truncate``) or send half a body and then wait until ``release`` is set (``stall``)."""

    def __init__(self):
        self.files, self.requests, self.truncate, self.stall = {}, [], set(), set()
        self.release = threading.Event()
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                state.requests.append(self.path)
                body = state.files.get(self.path.rsplit("/", 1)[-1])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path.rsplit("/", 1)[-1] in state.truncate | state.stall:
                    self.wfile.write(body[: len(body) // 2])  # then the connection closes
                    self.wfile.flush()
                    if self.path.rsplit("/", 1)[-1] in state.stall:
                        state.release.wait(30)
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mirror"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def unused_url() -> str:
    """A 127.0.0.1 address where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def register(monkeypatch, key: str, payload: bytes) -> None:
    """Make ``payload`` the published file for ``REMOTES[key]`` during this test only."""
    remote = download.REMOTES[key]
    monkeypatch.setitem(download.REMOTES, key,
                        replace(remote, checksum="md5:" + hashlib.md5(payload).hexdigest(), size=len(payload)))


def leftovers(folder):
    """Everything in a cache folder except the files named."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------------------ CIFAR archives
def cifar_batch(images: np.ndarray, labels, title: bytes) -> bytes:
    """A batch file as the official archive has it: a protocol-2 pickle of a bytes-keyed dict."""
    batch = {b"batch_label": title, b"labels": list(map(int, labels)), b"data": images.reshape(len(images), -1),
             b"filenames": [b"img_%d.png" % i for i in range(len(images))]}
    return pickle.dumps(batch, protocol=2)


def tar_gz(members: dict) -> bytes:
    """A gzip tar of ``{name: bytes}`` (``None`` marks a folder)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def cifar():
    """A small CIFAR archive (5 training batches of 12 images) and the raw images it holds."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(60, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, size=60)
    members = {"cifar-10-batches-py": None}
    for b in range(5):
        part = slice(12 * b, 12 * (b + 1))
        members[f"cifar-10-batches-py/data_batch_{b + 1}"] = cifar_batch(
            images[part], labels[part], b"training batch %d of 5" % (b + 1))
    members["cifar-10-batches-py/test_batch"] = cifar_batch(images[:4], labels[:4], b"testing batch 1 of 1")
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": [b"airplane"] * 10}, protocol=2)
    members["cifar-10-batches-py/readme.html"] = b"<html></html>"
    return tar_gz(members), images, labels


def serve_cifar(server, monkeypatch, archive):
    server.files["cifar-10-python.tar.gz"] = archive
    register(monkeypatch, "cifar10", archive)


# ------------------------------------------------------------------------------ CIFAR tests
def test_cifar_download_is_verified_unpacked_and_normalised_per_channel(server, monkeypatch, tmp_path, cifar):
    archive, images, labels = cifar
    serve_cifar(server, monkeypatch, archive)
    data = load("cifar10-5k", root=tmp_path, mirror=server.url, n=20, progress=False)

    assert server.requests == ["/mirror/cifar-10-python.tar.gz"]
    assert data.X.shape == (20, 3, 32, 32) and data.X.dtype == torch.float32
    assert torch.equal(data.labels, torch.as_tensor(labels[:20]))  # batches read in order 1, 2, ...
    assert torch.equal(data.Y.argmax(1), data.labels) and data.Y.shape == (20, 10)
    per_channel = data.X.transpose(0, 1).reshape(3, -1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(per_channel.std(1), torch.ones(3), atol=1e-5)
    # X is the raw (3, 32, 32) layout standardised channel by channel
    raw = torch.as_tensor(images[:20], dtype=torch.float32) / 255
    mean, std = raw.mean(dim=(0, 2, 3), keepdim=True), raw.std(dim=(0, 2, 3), keepdim=True)
    assert torch.allclose(data.X, (raw - mean) / std, atol=1e-5)
    assert "CIFAR-10" in data.source
    assert leftovers(tmp_path / "cifar10") == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]


def test_cifar_cache_hit_makes_no_request(server, monkeypatch, tmp_path, cifar):
    serve_cifar(server, monkeypatch, cifar[0])
    first = load("cifar10-5k", root=tmp_path, mirror=server.url, n=12, progress=False)
    second = load("cifar10-5k", root=tmp_path, mirror=server.url, n=12, progress=False)
    offline = load("cifar10-5k", root=tmp_path, download=False, n=12)
    assert len(server.requests) == 1
    assert torch.equal(first.X, second.X) and torch.equal(first.X, offline.X)


def test_cifar_corrupt_download_raises_checksum_mismatch_and_keeps_nothing(server, monkeypatch, tmp_path, cifar):
    archive = cifar[0]
    serve_cifar(server, monkeypatch, archive)
    server.files["cifar-10-python.tar.gz"] = archive[:100] + bytes([archive[100] ^ 0xFF]) + archive[101:]
    with pytest.raises(ChecksumMismatch, match="does not match the published checksum") as err:
        load("cifar10-5k", root=tmp_path, mirror=server.url, n=12, progress=False)
    assert download.REMOTES["cifar10"].checksum in str(err.value)
    assert leftovers(tmp_path / "cifar10") == []


def test_cifar_interrupted_download_keeps_nothing_and_a_retry_succeeds(server, monkeypatch, tmp_path, cifar):
    serve_cifar(server, monkeypatch, cifar[0])
    server.truncate.add("cifar-10-python.tar.gz")
    with pytest.raises(DataUnavailable, match="interrupted|IncompleteRead"):
        load("cifar10-5k", root=tmp_path, mirror=server.url, n=12, progress=False)
    assert leftovers(tmp_path / "cifar10") == []
    server.truncate.clear()
    assert len(load("cifar10-5k", root=tmp_path, mirror=server.url, n=12, progress=False)) == 12


def test_cifar_offline_error_says_what_to_download_and_where(tmp_path):
    folder = tmp_path / "cifar10"
    with pytest.raises(DataUnavailable) as err:
        load("cifar10-5k", root=tmp_path, mirror=unused_url(), progress=False)
    message = str(err.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert str(folder / "cifar-10-python.tar.gz") in message
    assert leftovers(folder) == []
    with pytest.raises(DataUnavailable, match="download=False"):
        load("cifar10-5k", root=tmp_path, download=False)


@pytest.mark.parametrize("evil", ["../escaped.txt", "/tmp/subspace_kit_escaped.txt", "link"])
def test_tar_members_outside_the_folder_or_links_are_rejected(server, monkeypatch, tmp_path, cifar, evil):
    buffer = io.BytesIO(cifar[0])
    with tarfile.open(fileobj=buffer) as good:
        members = {m.name: (good.extractfile(m).read() if m.isfile() else None) for m in good.getmembers()}
    if evil == "link":
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.type = tarfile.DIRTYPE if data is None else tarfile.REGTYPE
                info.size = 0 if data is None else len(data)
                tar.addfile(info, None if data is None else io.BytesIO(data))
            link = tarfile.TarInfo("cifar-10-batches-py/passwd")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
        archive = out.getvalue()
    else:
        archive = tar_gz({**members, evil: b"escaped"})
    serve_cifar(server, monkeypatch, archive)
    root = tmp_path / "cache"
    with pytest.raises(UnsafeArchive):
        load("cifar10-5k", root=root, mirror=server.url, n=12, progress=False)
    assert not (tmp_path / "escaped.txt").exists() and not (root / "escaped.txt").exists()
    assert leftovers(root / "cifar10") == ["cifar-10-python.tar.gz"]  # verified archive, nothing unpacked


def test_real_checksum_rejects_an_archive_that_is_not_the_official_one(server, tmp_path, cifar):
    server.files["cifar-10-python.tar.gz"] = cifar[0]  # REMOTES untouched: the published md5 applies
    with pytest.raises(ChecksumMismatch, match="c58f30108f718f92721af3b95e74349a"):
        load("cifar10-5k", root=tmp_path, mirror=server.url, progress=False)
    assert leftovers(tmp_path / "cifar10") == []


def test_a_corrupt_file_already_in_the_cache_is_reported_not_replaced(server, monkeypatch, tmp_path, cifar):
    serve_cifar(server, monkeypatch, cifar[0])
    placed = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"not the archive")
    with pytest.raises(ChecksumMismatch, match="Delete it"):
        load("cifar10-5k", root=tmp_path, mirror=server.url, progress=False)
    assert placed.read_bytes() == b"not the archive" and server.requests == []


def test_environment_variables_set_cache_root_and_mirror(server, monkeypatch, tmp_path, cifar):
    serve_cifar(server, monkeypatch, cifar[0])
    monkeypatch.setenv("SUBSPACE_KIT_DATA", str(tmp_path / "env-root"))
    monkeypatch.setenv("SUBSPACE_KIT_MIRROR", server.url)
    load("cifar10-5k", n=12, progress=False)
    assert server.requests == ["/mirror/cifar-10-python.tar.gz"]
    assert (tmp_path / "env-root" / "cifar10" / "cifar-10-batches-py" / "data_batch_1").is_file()
    assert download.data_root(tmp_path / "explicit") == tmp_path / "explicit"  # root= wins over the variable


def test_n_larger_than_the_archive_is_a_value_error(server, monkeypatch, tmp_path, cifar):
    serve_cifar(server, monkeypatch, cifar[0])
    assert torch.equal(load("cifar10-5k", root=tmp_path, mirror=server.url, n=30, progress=False).labels,
                       torch.as_tensor(cifar[2][:30]))  # spans batches 1-3
    with pytest.raises(ValueError, match="n must be at most the 60"):
        load("cifar10-5k", root=tmp_path, mirror=server.url, n=61, progress=False)


# ------------------------------------------------------------------------------ SST-2 (GLUE)
SST_ROWS = [("it 's a charming and often affecting journey . ", 1), ("unflinchingly bleak and desperate ", 0),
            ("the film is strictly routine . ", 0), ("a gorgeous , witty , seductive movie . ", 1),
            ("the movie is charming ", 1), ("bleak and routine ", 0), ("never seen again ", 0)]


def glue_zip(rows=SST_ROWS, extra: dict | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("SST-2/train.tsv", "sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows))
        zf.writestr("SST-2/dev.tsv", "sentence\tlabel\nfine . \t1\n")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buffer.getvalue()


def serve_glue(server, monkeypatch, payload):
    server.files["SST-2.zip"] = payload
    register(monkeypatch, "sst2", payload)


def test_sst2_from_glue_takes_the_first_sentences_and_caches(server, monkeypatch, tmp_path):
    serve_glue(server, monkeypatch, glue_zip())
    data = load("sst2-1k", root=tmp_path, mirror=server.url, n=6, max_len=5, min_freq=2, source="glue",
                progress=False)
    assert data.X.shape == (6, 5) and data.X.dtype == torch.int64
    assert data.labels.tolist() == [y for _, y in SST_ROWS[:6]]
    assert not data.meta["substitute"] and "GLUE" in data.source
    vocab = data.meta["vocab"]
    assert vocab[:2] == ("<pad>", "<unk>") and "never" not in vocab  # built from the first 6 rows only
    assert [vocab[i] for i in data.X[4].tolist()] == ["the", "movie", "is", "charming", "<pad>"]
    assert torch.equal(data.extra["mask"], data.X != 0)
    load("sst2-1k", root=tmp_path, mirror=server.url, n=6, source="glue", progress=False)
    assert server.requests == ["/mirror/SST-2.zip"]


def test_sst2_corrupt_or_interrupted_download_keeps_nothing(server, monkeypatch, tmp_path):
    payload = glue_zip()
    serve_glue(server, monkeypatch, payload)
    server.files["SST-2.zip"] = payload[:40] + bytes([payload[40] ^ 0xFF]) + payload[41:]
    with pytest.raises(ChecksumMismatch):
        load("sst2-1k", root=tmp_path, mirror=server.url, n=6, source="glue", progress=False)
    server.files["SST-2.zip"] = payload
    server.truncate.add("SST-2.zip")
    with pytest.raises(DataUnavailable, match="interrupted|IncompleteRead"):
        load("sst2-1k", root=tmp_path, mirror=server.url, n=6, source="glue", progress=False)
    assert leftovers(tmp_path / "sst2") == []


def test_sst2_zip_member_escaping_the_folder_is_rejected(server, monkeypatch, tmp_path):
    serve_glue(server, monkeypatch, glue_zip(extra={"../../escaped.txt": "x"}))
    with pytest.raises(UnsafeArchive):
        load("sst2-1k", root=tmp_path / "cache", mirror=server.url, n=6, source="glue", progress=False)
    assert not (tmp_path / "escaped.txt").exists()
    assert leftovers(tmp_path / "cache" / "sst2") == ["SST-2.zip"]


def test_sst2_glue_offline_error_says_what_and_where(tmp_path):
    with pytest.raises(DataUnavailable) as err:
        load("sst2-1k", root=tmp_path, mirror=unused_url(), source="glue", progress=False)
    assert "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip" in str(err.value)
    assert str(tmp_path / "sst2" / "SST-2.zip") in str(err.value)
    assert leftovers(tmp_path / "sst2") == []
