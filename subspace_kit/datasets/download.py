"""Downloading, verifying and unpacking data files into the cache, safely.

One place for the discipline every downloaded data set follows:

- **where**: the cache root is ``root=`` if given, else ``paths.data_cache()``
  (``$SUBSPACE_KIT_DATA``, else ``data/`` in the kit's per-user folder, see ``paths``); each
  data set has its own folder below it (``cifar10/``, ``sst2/``, ``fashion-mnist/``).
- **from where**: the file's official address, or ``mirror=`` / ``$SUBSPACE_KIT_MIRROR``,
  a base URL that serves the same file names (for institutional mirrors and for tests).
- **verified**: streamed to a hidden temporary file in the target folder while its checksum is
  computed; moved into place (atomic rename) only when size and checksum match the published
  ones. A failed, interrupted or corrupt download leaves nothing behind. For gzip files whose
  published copies differ only in their gzip header (Fashion-MNIST: the official files and
  Debian's), the checksum is of the uncompressed content.
- **killed downloads**: a process killed with -9 cannot clean up; its temporary file (or
  unpacking folder) carries the host name and process id, and the next download into the same
  folder removes it once that process is gone (or after ``STALE_AFTER_S`` without a write,
  whoever made it).
- **unpacked safely**: every member is checked before anything is written (regular files and
  folders only, no absolute paths, no ``..``), extracted into a temporary folder, then renamed
  into place, so a half-extracted folder is never mistaken for a cache hit.
- **offline**: a ``DataUnavailable`` error saying which file to fetch from where, and the
  exact path to put it at.

Expected checksums live in ``REMOTES`` (name -> ``Remote``); loaders look them up there at
call time, so a test can register a file it built itself without touching the real path.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath

from .. import paths

DATA_ENV = paths.DATA_ENV
MIRROR_ENV = "SUBSPACE_KIT_MIRROR"
CHUNK_BYTES = 1 << 20
STALE_AFTER_S = 6 * 3600  # a temporary file nobody wrote to for this long is abandoned
PART_SUFFIX, STAGING_SUFFIX = ".part", ".extracting"


class DataUnavailable(RuntimeError):
    """The data could not be found or fetched; the message says what to fetch and where to put it."""


class ChecksumMismatch(DataUnavailable):
    """A downloaded or cached file is not the published one."""


class UnsafeArchive(DataUnavailable):
    """An archive member would be written outside the target folder, or is not a plain file."""


@dataclass(frozen=True)
class Remote:
    """A published file: ``base_url/filename`` with its published checksum.

    ``checksum`` is ``"md5:<hex>"`` or ``"sha256:<hex>"``; ``size`` in bytes of the file, when
    published; ``gunzipped``: the checksum is of the file's gzip-decompressed content, of
    ``content_size`` bytes (a larger content is refused early); ``how_to_get``, when set,
    replaces the default "download it yourself" advice (``{folder}`` is filled in with the
    cache folder).
    """

    filename: str
    base_url: str
    checksum: str
    size: int | None = None
    how_to_get: str | None = None
    gunzipped: bool = False
    content_size: int | None = None

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.filename}"


_FASHION_URL = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion"
_FASHION_HINT = ("On Debian/Ubuntu: `apt-get install dataset-fashion-mnist`; elsewhere download {url} and put "
                 "it in {folder}.")

REMOTES: dict[str, Remote] = {
    # The official python-version archive; md5 published on the CIFAR page.
    "cifar10": Remote("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz",
                      "md5:c58f30108f718f92721af3b95e74349a", 170498071),
    # GLUE's SST-2 archive; md5 as pinned for this URL by torchtext's SST2 loader (we could not
    # download the file here to compute it ourselves).
    "sst2": Remote("SST-2.zip", "https://dl.fbaipublicfiles.com/glue/data",
                   "md5:9f81648d4199384278b86e315dac217c"),
    # The vaderSentiment 3.3.2 sdist on PyPI (sha256 as PyPI publishes it, and of the file
    # downloaded from this URL); it carries the Rotten-Tomatoes sentences of the SST-2 substitute.
    "vader-sdist": Remote("vaderSentiment-3.3.2.tar.gz", "https://files.pythonhosted.org/packages/77/8c/"
                          "4a48c10a50f750ae565e341e697d74a38075a3e43ff0df6f1ab72e186902",
                          "sha256:5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
                          2466783, how_to_get="Fetch it with `python -m pip download --no-deps --no-binary :all: "
                          "vaderSentiment==3.3.2 -d {folder}` (pip reaches PyPI where nothing else can)."),
    # Fashion-MNIST's training files from Zalando's repository. The official .gz files (md5
    # 8d4fb7e6c68d591d4c3dfef9ec88bf0d / 25c81989df183df01b3e8a0aad5dffbe) and Debian's
    # dataset-fashion-mnist copies differ in their gzip header only, so the sha256 is of the
    # uncompressed IDX bytes: computed from Debian's files, and equal for the official labels file.
    "fashion-mnist-images": Remote("train-images-idx3-ubyte.gz", _FASHION_URL,
                                   "sha256:c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                                   gunzipped=True, content_size=47040016, how_to_get=_FASHION_HINT),
    "fashion-mnist-labels": Remote("train-labels-idx1-ubyte.gz", _FASHION_URL,
                                   "sha256:bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                                   gunzipped=True, content_size=60008, how_to_get=_FASHION_HINT),
}


# ---------------------------------------------------------------------------------- locations
def data_root(root: str | os.PathLike | None = None) -> Path:
    """The cache root: ``root``, else ``paths.data_cache()`` (``$SUBSPACE_KIT_DATA``, else the
    per-user folder's ``data/``)."""
    if root is not None:
        return Path(root).expanduser()
    return paths.data_cache()


def source_url(remote: Remote, mirror: str | None = None) -> str:
    """Where ``remote`` is fetched from: ``mirror`` (or ``$SUBSPACE_KIT_MIRROR``) replaces the base URL."""
    base = mirror or os.environ.get(MIRROR_ENV) or remote.base_url
    return f"{base.rstrip('/')}/{remote.filename}"


# ---------------------------------------------------------------------------------- checksums
def _hasher(checksum: str):
    algorithm, _, expected = checksum.partition(":")
    if algorithm not in ("md5", "sha256") or not expected:
        raise ValueError(f"checksum must look like 'md5:<hex>' or 'sha256:<hex>'; got {checksum!r}")
    return hashlib.new(algorithm, usedforsecurity=False), expected.lower()


class _Digest:
    """The checksum of a byte stream fed in chunks, or of its gunzipped content (``remote.gunzipped``).

    Decompression is bounded: at most ``CHUNK_BYTES`` of output per step, and never more than
    ``remote.content_size`` in all, so a hostile file cannot blow up memory or time.
    """

    def __init__(self, remote: Remote):
        self.hasher, _ = _hasher(remote.checksum)
        self.inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if remote.gunzipped else None
        self.limit, self.content_bytes, self.bad = remote.content_size, 0, None

    def update(self, chunk: bytes) -> None:
        if self.inflate is None:
            self.hasher.update(chunk)
            return
        while chunk and self.bad is None:
            if self.inflate.eof:
                self.bad = "data after the end of the gzip stream"
                return
            out = self.inflate.decompress(chunk, CHUNK_BYTES)
            chunk = self.inflate.unconsumed_tail
            self.content_bytes += len(out)
            if self.limit is not None and self.content_bytes > self.limit:
                self.bad = f"more than the published {self.limit} uncompressed bytes"
                return
            self.hasher.update(out)

    def result(self) -> str:
        """``"<algorithm>:<hex>"``, or a description of why the content cannot be the published one."""
        if self.inflate is not None and self.bad is None and not self.inflate.eof:
            self.bad = "the gzip stream is incomplete"
        if self.bad is not None:
            return f"not a valid file: {self.bad}"
        return f"{self.hasher.name}:{self.hasher.hexdigest()}"


def file_checksum(path: Path, checksum: str | Remote) -> str:
    """The digest of ``path`` in the algorithm named by ``checksum`` (or as ``Remote`` says), in the same form."""
    remote = checksum if isinstance(checksum, Remote) else Remote(Path(path).name, "", checksum)
    digest = _Digest(remote)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.result()


def _fetch_hint(remote: Remote, dest: Path) -> str:
    if remote.how_to_get:
        return remote.how_to_get.format(folder=dest.parent, url=remote.url)
    return f"Download {remote.url} yourself and put it at {dest} (or set {MIRROR_ENV} to a mirror)."


def verify(path: Path, remote: Remote) -> Path:
    """``path`` if its checksum is the published one; ``ChecksumMismatch`` otherwise."""
    got = file_checksum(path, remote)
    if got != remote.checksum.lower():
        raise ChecksumMismatch(
            f"{path} does not match the published checksum of {remote.filename} "
            f"(expected {remote.checksum}{' of the uncompressed content' if remote.gunzipped else ''}, got {got}). "
            f"Delete it; then {_fetch_hint(remote, path)}"
        )
    return path


# ---------------------------------------------------------------------------------- leftovers
def _owner_tag() -> str:
    """``<host>.<pid>``: who made a temporary file (host names lose dots so the tag splits back)."""
    host = socket.gethostname().replace(".", "-").replace(os.sep, "-") or "host"
    return f"{host}.{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) sends CTRL_C_EVENT there: rely on the age rule alone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _is_stale(path: Path, stem: str) -> bool:
    """``stem`` is ``<host>.<pid>.<random>`` for our own temporary names (older names: age only)."""
    try:
        idle = time.time() - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    parts = stem.rsplit(".", 2)
    if len(parts) == 3 and parts[1].isdigit():
        host, pid = parts[0], int(parts[1])
        if host == _owner_tag().split(".")[0] and pid != os.getpid() and not _pid_alive(pid):
            return True
    return idle > STALE_AFTER_S


def clean_stale(folder: Path, name: str) -> list[Path]:
    """Remove the temporary files (``.<name>.*.part``) and unpacking folders (``.<name>.*.extracting``)
    left in ``folder`` by killed processes; returns what was removed. Live ones are left alone."""
    removed = []
    for suffix in (PART_SUFFIX, STAGING_SUFFIX):
        prefix = f".{name}."
        for path in Path(folder).glob(f"{prefix}*{suffix}"):
            if not _is_stale(path, path.name[len(prefix):-len(suffix)]):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# ---------------------------------------------------------------------------------- download
def fetch(remote: Remote, folder: Path, *, download: bool = True, mirror: str | None = None,
          timeout: float = 30.0, progress: bool = False) -> Path:
    """The verified file ``folder/remote.filename``, downloaded first when missing.

    A file already there is verified, never overwritten. With ``download=False``, or when the
    download fails, raises ``DataUnavailable`` saying what to fetch and where to put it.
    """
    dest = Path(folder) / remote.filename
    if dest.exists():
        return verify(dest, remote)
    if not download:
        raise DataUnavailable(f"{remote.filename} is not in the cache and download=False. {_fetch_hint(remote, dest)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(dest.parent, remote.filename)
    url = source_url(remote, mirror)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{remote.filename}.{_owner_tag()}.", suffix=PART_SUFFIX)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(url, out, remote, timeout, progress)
        if digest != remote.checksum.lower():
            raise ChecksumMismatch(
                f"the file downloaded from {url} does not match the published checksum of {remote.filename} "
                f"(expected {remote.checksum}, got {digest}); nothing was kept. {_fetch_hint(remote, dest)}"
            )
        os.replace(tmp, dest)
    except (OSError, HTTPException) as exc:  # URLError, refused, reset, timeout, short read
        raise DataUnavailable(f"could not download {url}: {exc}. {_fetch_hint(remote, dest)}") from exc
    finally:  # also on KeyboardInterrupt: never leave a partial file (kill -9: see clean_stale)
        tmp.unlink(missing_ok=True)
    return dest


def _stream(url: str, out, remote: Remote, timeout: float, progress: bool) -> str:
    """Copy ``url`` into ``out``; returns the digest. Raises on a short or oversized body."""
    digest = _Digest(remote)
    request = urllib.request.Request(url, headers={"User-Agent": "subspace_kit"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        announced = response.headers.get("Content-Length")
        expected = int(announced) if announced is not None else remote.size
        bar = _progress_bar(expected, remote.filename) if progress else None
        received = 0
        while chunk := response.read(CHUNK_BYTES):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
    if expected is not None and received != expected:
        raise OSError(f"download interrupted: received {received} of {expected} bytes")
    return digest.result()


def _progress_bar(total, name):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}", leave=False)


# ---------------------------------------------------------------------------------- unpacking
def _check_member_name(name: str, archive: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchive(f"{archive} has a member that would be written outside its folder: {name!r}")


def _safe_tar_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for m in members:
        _check_member_name(m.name, archive)
        if not (m.isfile() or m.isdir()):
            raise UnsafeArchive(f"{archive} has a member that is not a plain file or folder: {m.name!r}")
    return members


def _safe_zip_members(zf: zipfile.ZipFile, archive: Path) -> list[zipfile.ZipInfo]:
    members = zf.infolist()
    for m in members:
        _check_member_name(m.filename, archive)
        if (m.external_attr >> 16) & 0o170000 == 0o120000:  # a symbolic link stored in the zip
            raise UnsafeArchive(f"{archive} has a member that is a symbolic link: {m.filename!r}")
    return members


def extract(archive: Path, folder: Path, expect: str) -> Path:
    """Unpack ``archive`` (tar or zip) so that ``folder/expect`` appears complete, or not at all.

    All members are checked before anything is written. Returns ``folder/expect``.
    """
    target = Path(folder) / expect
    clean_stale(Path(folder), expect)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".{expect}.{_owner_tag()}.", suffix=STAGING_SUFFIX))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging, members=_safe_zip_members(zf, archive))
        else:
            with tarfile.open(archive) as tar:
                members = _safe_tar_members(tar, archive)
                # The "data" filter re-checks the same rules where this Python has it (3.10.12+).
                extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(staging, members=members, **extra)
        if not (staging / expect).exists():
            raise DataUnavailable(f"{archive} does not contain {expect!r}; is it the right file?")
        try:
            os.replace(staging / expect, target)
        except OSError:
            if not target.is_dir():  # else another process unpacked the same archive first
                raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise DataUnavailable(f"{archive} could not be unpacked ({exc}); delete it and fetch it again") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def fetch_and_extract(key: str, folder: Path, expect: str, *, download: bool = True,
                      mirror: str | None = None, progress: bool = True) -> Path:
    """``folder/expect`` unpacked from ``REMOTES[key]``: a cache hit costs no request and no hashing."""
    target = Path(folder) / expect
    if target.exists():
        return target
    archive = fetch(REMOTES[key], folder, download=download, mirror=mirror, progress=progress)
    return extract(archive, folder, expect)
