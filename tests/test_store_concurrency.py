"""One writer per run folder: a second writer waits (then reads the finished run) or, asked
not to wait, is told in one line which process holds the run; a killed holder's lock is
released by the OS and its partial run is redone by the next writer, never interleaved."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from subspace_kit.experiment import RunStore
from subspace_kit.experiment.store import RunInProgress
from store_writer import CONFIG

WRITER = Path(__file__).with_name("store_writer.py")
ROOT = Path(__file__).parents[1]


def _spawn(root, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(WRITER), str(root), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(store):
    return store.open_run(CONFIG).read_rows()


def _wait_for(condition, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.slow  # subprocesses that import torch
def test_a_second_writer_is_told_who_holds_the_run_and_a_killed_holder_releases_it(tmp_path):
    store = RunStore(tmp_path)
    holder = _spawn(tmp_path, "hold")
    try:
        assert holder.stdout.readline().strip() == "locked", holder.stderr.read()
        with pytest.raises(RunInProgress) as info:
            with store.lock(CONFIG, wait=False):
                pass
        message = str(info.value)
        assert len(message.splitlines()) == 1
        assert CONFIG.key() in message and f"pid {holder.pid} on {socket.gethostname()}" in message
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=30) == -signal.SIGKILL
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.stdout.close()
        holder.stderr.close()
    lock_file = store.path(CONFIG) / ".lock"
    assert lock_file.exists()  # the killed holder could not clean up: its pid is still written there
    with store.lock(CONFIG, wait=False):  # ...but the OS released its lock
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    assert not lock_file.exists()


@pytest.mark.slow  # subprocesses that import torch
def test_two_writers_started_together_never_interleave(tmp_path):
    store = RunStore(tmp_path)
    first, second = _spawn(tmp_path, "write", 30, 0.02), _spawn(tmp_path, "write", 30, 0.02)
    outs = sorted(p.communicate(timeout=120)[0].strip() for p in (first, second))
    assert [p.returncode for p in (first, second)] == [0, 0]
    assert outs == ["served 30", "wrote 30"]
    rows = _rows(store)
    assert [r["step"] for r in rows] == list(range(30)) and len({r["writer"] for r in rows}) == 1
    assert store.load(CONFIG).status == "completed"


@pytest.mark.slow  # subprocesses that import torch
def test_a_writer_killed_mid_run_leaves_the_run_to_the_waiting_writer_alone(tmp_path):
    store = RunStore(tmp_path)
    first = _spawn(tmp_path, "write", 200, 0.05)
    try:
        _wait_for(lambda: len(_rows(store)) >= 5, "the first writer's rows")
        second = _spawn(tmp_path, "write", 40, 0.0)
        time.sleep(0.5)
        assert second.poll() is None  # waiting for the lock, not writing
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
        out, err = second.communicate(timeout=120)
    finally:
        for p in (first,):
            if p.poll() is None:
                p.kill()
            p.stdout.close()
            p.stderr.close()
    assert second.returncode == 0 and out.strip() == "wrote 40", err
    rows = _rows(store)
    assert [r["step"] for r in rows] == list(range(40)) and {r["writer"] for r in rows} == {second.pid}
    loaded = store.load(CONFIG)
    assert loaded.status == "completed" and loaded.summary["rows"] == 40


def test_a_stale_lock_file_naming_a_dead_process_does_not_block(tmp_path):
    store = RunStore(tmp_path)
    folder = store.open_run(CONFIG).path
    (folder / ".lock").write_text(json.dumps({"pid": 2 ** 22 + 7, "host": "gone", "since": "yesterday"}))
    with store.lock(CONFIG, wait=False) as run:
        assert run.path == folder


def test_two_threads_of_one_process_exclude_each_other(tmp_path):
    store = RunStore(tmp_path)
    held, release = threading.Event(), threading.Event()

    def hold():
        with store.lock(CONFIG):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(30)
        with pytest.raises(RunInProgress, match=f"pid {os.getpid()}"):
            with store.lock(CONFIG, wait=False):
                pass
    finally:
        release.set()
        thread.join(30)
    with store.lock(CONFIG, wait=False):
        pass


@pytest.mark.slow  # subprocesses that import torch
def test_a_waiting_writer_is_told_whom_it_waits_for(tmp_path):
    store = RunStore(tmp_path)
    told = []
    holder = _spawn(tmp_path, "hold")
    try:
        assert holder.stdout.readline().strip() == "locked"
        timer = threading.Timer(1.0, holder.kill)  # the waiter gets the lock once the holder dies
        timer.start()
        with store.lock(CONFIG, on_wait=told.append):
            pass
        timer.join()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(30)
        holder.stdout.close()
        holder.stderr.close()
    assert len(told) == 1 and f"pid {holder.pid}" in told[0] and "in progress" in told[0]
