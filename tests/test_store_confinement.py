"""Confinement: a crafted store (a run folder or one of its files replaced by a link, a folder
or a FIFO where a file should be) cannot make the kit read, write or delete outside the store;
the error names the path. Checked on the outside file's bytes and modification time."""
import errno
import os
import threading

import pytest

from subspace_kit.experiment import RunStore, iter_run
from subspace_kit.experiment.store import (DamagedRun, MetricsWriter, StoreError, UnsafePath, load_checkpoint,
                                           read_metrics, write_json)
from test_engine_support import tiny, tiny_config  # noqa: F401  (fixture)


@pytest.fixture
def outside(tmp_path):
    """A folder outside the store holding files a crafted store points at: ``(folder, snapshot)``;
    ``snapshot()`` gives every file's (bytes, mtime_ns) there."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    for name in ("metrics.csv", "checkpoint.npz", "x"):
        (folder / name).write_bytes(b"precious " + name.encode())
    past = 1_000_000_000
    for p in folder.iterdir():
        os.utime(p, ns=(past, past))

    def snapshot():
        return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    return folder, snapshot


def test_a_run_folder_that_is_a_link_is_never_written_through(tiny, tmp_path, outside):
    folder, snapshot = outside
    before = snapshot()
    cfg = tiny_config()
    store = RunStore(tmp_path / "store")
    store.root.mkdir()
    store.path(cfg).symlink_to(folder, target_is_directory=True)
    with pytest.raises(UnsafePath, match=str(store.path(cfg))):
        list(iter_run(cfg, store=store))  # the runner as it is today, through the legacy file functions
    with pytest.raises(UnsafePath, match="is a link"):
        with store.lock(cfg):
            pass
    with pytest.raises(UnsafePath):
        store.open_run(cfg)
    assert snapshot() == before
    assert store.load(cfg).status == "damaged"
    [entry] = store.entries()
    assert entry.status == "damaged" and "is a link" in entry.message


@pytest.mark.parametrize("name", ["metrics.csv", "checkpoint.npz", "config.json", "summary.json"])
def test_a_file_that_is_a_link_is_neither_read_nor_written_through(tiny, tmp_path, outside, name):
    folder, snapshot = outside
    cfg = tiny_config()
    store = RunStore(tmp_path / "store")
    list(iter_run(cfg, store=store))
    run_dir = store.path(cfg)
    (run_dir / name).unlink(missing_ok=True)
    (run_dir / name).symlink_to(folder / "x")
    before = snapshot()
    loaded = store.load(cfg)
    assert loaded.status == "damaged" and str(run_dir / name) in loaded.summary["message"]
    with pytest.raises(UnsafePath, match=name):
        if name == "checkpoint.npz":
            load_checkpoint(run_dir / name)
        elif name == "metrics.csv":
            MetricsWriter(run_dir / name, ["step", "phase", "mode"], keep_until=(1, 5))  # resume reads it first
        else:
            read_metrics(run_dir / name)
    # Writing replaces the link itself (atomic rename), deleting removes the link: the target stays.
    write_json(run_dir / name, {"x": 1})
    assert not (run_dir / name).is_symlink()
    (run_dir / name).unlink()
    assert snapshot() == before


def test_deleting_a_checkpoint_link_removes_the_link_not_its_target(tiny, tmp_path, outside):
    folder, snapshot = outside
    cfg = tiny_config()
    store = RunStore(tmp_path / "store")
    run_dir = store.open_run(cfg)
    (run_dir.path / "checkpoint.npz").symlink_to(folder / "checkpoint.npz")
    before = snapshot()
    run_dir.discard()
    assert not os.path.lexists(run_dir.path / "checkpoint.npz") and snapshot() == before


def test_a_folder_or_fifo_where_a_file_should_be_is_damage_not_a_crash_or_a_hang(tiny, tmp_path):
    cfg = tiny_config()
    store = RunStore(tmp_path)
    list(iter_run(cfg, store=store))
    run_dir = store.path(cfg)
    (run_dir / "metrics.csv").unlink()
    (run_dir / "metrics.csv").mkdir()
    other = tiny_config(seed=5)
    list(iter_run(other, store=store))
    (store.path(other) / "summary.json").unlink()
    os.mkfifo(store.path(other) / "summary.json")  # opening it for reading would block forever
    entries = {e.path: e for e in store.entries()}
    assert entries[run_dir].status == "damaged"
    assert "metrics.csv is not a regular file" in entries[run_dir].message
    assert "summary.json is not a regular file" in entries[store.path(other)].message
    assert {r.status for r in store.runs()} == {"damaged"}
    with pytest.raises(DamagedRun, match="metrics.csv is a folder"):
        write_json(run_dir / "metrics.csv", {})


def test_bad_json_in_a_run_folder_is_listed_as_damaged_naming_the_file(tiny, tmp_path):
    cfg = tiny_config()
    store = RunStore(tmp_path)
    list(iter_run(cfg, store=store))
    (store.path(cfg) / "summary.json").write_text("{not json")
    (tmp_path / "0123456789abcdef").mkdir()
    (tmp_path / "0123456789abcdef" / "config.json").write_text("[1, 2")
    entries = {e.path.name: e for e in store.entries()}
    assert entries[cfg.key()].status == "damaged" and "summary.json is not valid JSON" in entries[cfg.key()].message
    assert entries["0123456789abcdef"].status == "damaged"
    assert "0123456789abcdef/config.json is not valid JSON" in entries["0123456789abcdef"].message
    assert [r.config for r in store.runs()] == [cfg]  # a folder without a readable config has no RunResult


def test_a_store_that_cannot_be_written_gives_a_store_error_naming_the_folder(tiny, tmp_path, monkeypatch):
    # Root ignores permission bits, so refuse the temporary file the way a read-only folder would.
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)

    cfg = tiny_config()
    store = RunStore(tmp_path)
    store.open_run(cfg)
    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(StoreError, match=f"{store.path(cfg)}.*: permission denied"):
        list(iter_run(cfg, store=store, stop=threading.Event()))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_a_read_only_run_folder_gives_a_store_error(tiny, tmp_path):
    cfg = tiny_config()
    store = RunStore(tmp_path)
    folder = store.open_run(cfg).path
    folder.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="permission denied"):
            list(iter_run(cfg, store=store))
    finally:
        folder.chmod(0o755)
