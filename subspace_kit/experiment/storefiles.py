"""The run store's file access: confined to the store, atomic, and one writer per run folder.

Confinement: a run folder is opened with ``O_NOFOLLOW | O_DIRECTORY`` and every file in it
relative to that folder's descriptor with ``O_NOFOLLOW``, so a link planted in a shared store
(``<key> -> elsewhere``, ``metrics.csv -> /etc/x``) is refused with ``UnsafePath`` naming it,
never followed: the kit cannot be made to read, write or delete outside the store. Only the
store's root, chosen by the user, may itself be (or lie under) a link.

Atomicity: files are replaced with a temporary file in the same folder and ``rename``, which
replaces a planted link rather than writing through it.

One writer: ``hold_lock`` takes an exclusive ``flock`` on ``<folder>/.lock`` and writes the
holder's pid and host into it (for the message a second writer gets). The kernel releases the
lock when its holder dies, so a killed run never blocks the next one; the pid in the file is
only read to explain a refusal, never trusted to decide one.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import socket
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

LOCK_NAME = ".lock"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO planted there must not hang us


class StoreError(RuntimeError):
    """A problem with the files of a run store; the message names the path."""


class UnsafePath(StoreError):
    """A link (or another kind of entry) where the store expects its own folder or file."""


class DamagedRun(StoreError):
    """A run whose files are unreadable, or disagree with each other or with its key."""


class RunInProgress(StoreError):
    """Another process is writing this run (it holds the run folder's lock)."""


def _error(exc: OSError, path: Path, what: str) -> StoreError:
    """The ``StoreError`` for an ``OSError`` met while opening ``path`` (a ``what``)."""
    if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and os.path.islink(path)):
        return UnsafePath(f"{path} is a link; the run store never follows links (remove it, or move the "
                          "real folder into the store)")
    if exc.errno == errno.ENOTDIR:
        return DamagedRun(f"{path} is not a folder (a run folder is expected there)")
    if exc.errno == errno.EISDIR:
        return DamagedRun(f"{path} is a folder where the run's {what} should be")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreError(f"{path}: permission denied ({exc.strerror}); is the store read-only?")
    return StoreError(f"{path}: {exc.strerror or exc}")


def open_dir(folder: Path, *, create: bool = False) -> int:
    """A descriptor of the run folder ``folder`` (never a link); ``FileNotFoundError`` when it
    does not exist and not ``create``. Creating makes the store root (with parents) if needed."""
    folder = Path(folder)
    if create:
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(folder)  # mkdir never follows a link at the last component
        except FileExistsError:
            pass
        except OSError as exc:
            raise _error(exc, folder, "folder") from None
    try:
        return os.open(folder, _DIR_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _error(exc, folder, "folder") from None


@contextmanager
def folder_fd(folder: Path, *, create: bool = False) -> Iterator[int]:
    fd = open_dir(folder, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def open_in(dir_fd: int, folder: Path, name: str, flags: int, mode: int = 0o644) -> int:
    """Open ``folder/name`` relative to ``dir_fd`` without following links; the result is a
    regular file (``DamagedRun`` otherwise). ``FileNotFoundError`` passes through."""
    try:
        fd = os.open(name, flags | _FILE_FLAGS, mode, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _error(exc, Path(folder) / name, name) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DamagedRun(f"{Path(folder) / name} is not a regular file (a folder or device where the run's "
                         f"{name} should be)")
    return fd


def read_file(path: Path) -> bytes | None:
    """The bytes of the store file ``path`` (``None`` when it or its folder does not exist)."""
    path = Path(path)
    try:
        with folder_fd(path.parent) as d:
            fd = open_in(d, path.parent, path.name, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise _error(exc, path, path.name) from None


def atomic_write(path: Path, write: Callable) -> None:
    """Replace the store file ``path`` atomically: ``write(fh)`` fills a temporary file in the
    same folder (binary), which is synced and renamed over ``path``."""
    path = Path(path)
    with folder_fd(path.parent, create=True) as d:
        tmp = f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=d)
        except OSError as exc:
            raise _error(exc, path.parent, "folder") from None
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path.name, src_dir_fd=d, dst_dir_fd=d)
        except BaseException as exc:
            try:
                os.unlink(tmp, dir_fd=d)
            except OSError:
                pass
            if isinstance(exc, OSError) and not isinstance(exc, StoreError):
                raise _error(exc, path, path.name) from None
            raise


def open_append(path: Path):
    """A text handle appending to the existing store file ``path`` (no link followed)."""
    path = Path(path)
    with folder_fd(path.parent) as d:
        fd = open_in(d, path.parent, path.name, os.O_WRONLY | os.O_APPEND)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a", newline="")


def remove(path: Path) -> None:
    """Delete the store file ``path`` if it exists (a link there is removed, not its target)."""
    path = Path(path)
    try:
        with folder_fd(path.parent) as d:
            os.unlink(path.name, dir_fd=d)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _error(exc, path, path.name) from None


def links_in(folder: Path) -> list[str]:
    """Names of the links inside the run folder ``folder`` (which is itself never followed)."""
    links = []
    try:
        with folder_fd(folder) as d:
            for name in os.listdir(d):
                try:
                    if stat.S_ISLNK(os.stat(name, dir_fd=d, follow_symlinks=False).st_mode):
                        links.append(name)
                except FileNotFoundError:  # a writer's temporary file, renamed meanwhile
                    pass
    except FileNotFoundError:
        pass
    return sorted(links)


def mtime(path: Path) -> float:
    """Modification time of ``path`` itself (a link is not followed); 0 when missing."""
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it (``pid N on HOST since T``)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {info['pid']} on {info['host']}, since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def _acquire(d: int, folder: Path, label: str, wait: bool, on_wait) -> int:
    """Lock ``folder/.lock`` (retrying if the file was replaced meanwhile); returns its fd."""
    while True:
        fd = open_in(d, folder, LOCK_NAME, os.O_RDWR | os.O_CREAT)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                busy = f"{label} is in progress in another process ({_holder(fd)})"
                if not wait:
                    raise RunInProgress(f"{busy}; wait for it, or stop that process and run again to "
                                        "resume") from None
                if on_wait is not None:
                    on_wait(busy)
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        # The previous holder unlinks the file on release: make sure we locked the file that is
        # there now, or two writers could each hold a lock on a different file.
        try:
            now = os.stat(LOCK_NAME, dir_fd=d, follow_symlinks=False)
        except FileNotFoundError:
            now = None
        locked = os.fstat(fd)
        if now is not None and (now.st_ino, now.st_dev) == (locked.st_ino, locked.st_dev):
            return fd
        os.close(fd)


@contextmanager
def hold_lock(folder: Path, label: str, *, wait: bool = True,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock of the run folder ``folder`` (created if needed) for the block.

    ``wait=False``: raise ``RunInProgress`` (naming ``label`` and the holder) instead of waiting;
    otherwise ``on_wait(message)`` is called once before waiting. Not re-entrant: a second
    ``hold_lock`` on the same folder in the same process waits forever (or raises)."""
    folder = Path(folder)
    with folder_fd(folder, create=True) as d:
        fd = _acquire(d, folder, label, wait, on_wait)
        try:
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            yield
        finally:
            try:
                os.unlink(LOCK_NAME, dir_fd=d)  # while still locked: the next writer re-checks the inode
            except OSError:
                pass
            os.close(fd)  # releases the flock


def clean_temporaries(folder: Path) -> None:
    """Remove temporary files left by a writer killed mid-write (call only while holding the lock)."""
    try:
        with folder_fd(folder) as d:
            for name in os.listdir(d):
                if name.startswith(".") and name.endswith(".tmp"):
                    try:
                        os.unlink(name, dir_fd=d)
                    except OSError:
                        pass
    except (FileNotFoundError, StoreError):
        pass
