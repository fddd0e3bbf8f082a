"""Run-store integrity: a stored run is served only when its files agree (config with key,
metrics with the summary's row count and checksum, checkpoint fields with the config);
otherwise it is ``damaged`` with the file (and field) named. Half-written last rows of a run
still going are dropped, never read as full rows."""
import io
import json
import threading

import numpy as np
import pytest

from subspace_kit.experiment import RunStore, iter_run, run
from subspace_kit.experiment.store import (DamagedRun, MetricsWriter, load_checkpoint, read_metrics,
                                           save_checkpoint)
from test_engine_support import assert_same_rows, tiny, tiny_config  # noqa: F401  (fixture)


@pytest.fixture
def sealed(tiny, tmp_path):
    """A completed tiny run whose summary records rows and checksum (as the wired runner writes it)."""
    cfg = tiny_config()
    result = run(cfg, store=tmp_path)
    RunStore(tmp_path).seal()
    return cfg, result


def legacy_run(cfg, store):
    """Run ``cfg`` and strip ``rows``/``metrics_sha256`` from its summary: a run stored before
    summaries recorded them (whether or not the runner in use records them)."""
    result = run(cfg, store=store)
    path = result.path / "summary.json"
    summary = json.loads(path.read_text())
    for name in ("rows", "metrics_sha256"):
        summary.pop(name, None)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True))
    result.summary = summary
    return result


def _load(tmp_path, cfg):
    return RunStore(tmp_path).load(cfg)


def test_an_intact_sealed_run_is_served_with_its_rows(sealed, tmp_path):
    cfg, result = sealed
    loaded = _load(tmp_path, cfg)
    assert loaded.status == "completed"
    assert loaded.summary["rows"] == len(result.rows) and len(loaded.summary["metrics_sha256"]) == 64
    assert_same_rows(loaded.rows, result.rows, ignore=())


def _cut_inside_last_cell(path):
    data = path.read_bytes()
    path.write_bytes(data[:-4])  # drops the newline and the last digits of the last cell


def _drop_last_line(path):
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))


def _edit_a_cell(path):
    lines = path.read_text().splitlines(keepends=True)
    cells = lines[3].split(",")
    cells[3] = "0.123"  # train_loss of the third row
    lines[3] = ",".join(cells)
    path.write_text("".join(lines))


@pytest.mark.parametrize("damage", [_cut_inside_last_cell, _drop_last_line, _edit_a_cell,
                                    lambda p: p.unlink()])
def test_damaged_metrics_of_a_sealed_run_are_reported_naming_the_file(sealed, tmp_path, damage):
    cfg, result = sealed
    damage(result.path / "metrics.csv")
    loaded = _load(tmp_path, cfg)
    assert loaded.status == "damaged" and loaded.rows == []
    assert str(result.path / "metrics.csv") in loaded.summary["message"]
    assert loaded.summary["stored_status"] == "completed"


@pytest.mark.parametrize("damage,why", [(_cut_inside_last_cell, "ends inside a row"),
                                        (lambda p: p.unlink(), "is missing"),
                                        (lambda p: p.write_text(p.read_text().splitlines()[0] + "\n"), "no rows")])
def test_damage_is_detected_in_a_legacy_run_without_a_checksum(tiny, tmp_path, damage, why):
    cfg = tiny_config()
    result = legacy_run(cfg, tmp_path)
    damage(result.path / "metrics.csv")
    loaded = _load(tmp_path, cfg)
    assert loaded.status == "damaged" and why in loaded.summary["message"]
    assert "metrics.csv" in loaded.summary["message"]


@pytest.mark.parametrize("field,value", [("lr", 0.02), ("k", 3)])
def test_an_edited_config_is_reported_not_served_under_the_old_key(sealed, tmp_path, field, value):
    cfg, result = sealed
    path = result.path / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))
    loaded = _load(tmp_path, cfg)
    assert loaded.status == "damaged" and "config.json does not hash to" in loaded.summary["message"]
    [entry] = RunStore(tmp_path).entries()
    assert entry.status == "damaged" and str(path) in entry.message
    assert RunStore.load_path(result.path).status == "damaged"  # by folder name too


def test_a_half_written_last_row_of_a_running_run_is_dropped_on_read_and_on_resume(tmp_path):
    path = tmp_path / "metrics.csv"
    columns = ["step", "phase", "mode", "eig_3"]
    writer = MetricsWriter(path, columns)
    for step in range(3):
        writer.write({"step": step, "phase": "warmup", "mode": "none", "eig_3": 53.68})
    writer.close()
    path.write_bytes(path.read_bytes() + b"3,warmup,none,5")  # killed inside the last cell
    assert [r["step"] for r in read_metrics(path)] == [0, 1, 2]
    MetricsWriter(path, columns, keep_until=(0, 10)).close()  # resume from a checkpoint at step 11
    assert path.read_text().endswith("2,warmup,none,53.68\n")
    assert [r["eig_3"] for r in read_metrics(path)] == [53.68] * 3


def test_seal_adds_rows_and_checksum_and_changes_only_the_summary(tiny, tmp_path):
    cfg = tiny_config()
    result = legacy_run(cfg, tmp_path)
    before = {p.name: p.read_bytes() for p in result.path.iterdir()}
    [(path, what)] = RunStore(tmp_path).seal()
    after = {p.name: p.read_bytes() for p in result.path.iterdir()}
    assert what == f"sealed: {len(result.rows)} rows" and path == result.path
    assert set(after) == set(before)
    assert [n for n in after if after[n] != before[n]] == ["summary.json"]
    summary = json.loads(after["summary.json"])
    assert summary == {**result.summary, "rows": len(result.rows), "metrics_sha256": summary["metrics_sha256"]}
    assert RunStore(tmp_path).seal() == [(result.path, "already sealed")]


# ---------------------------------------------------------------------------- checkpoints
@pytest.fixture
def checkpoints(tiny, tmp_path):
    """Real checkpoints of the tiny run, stopped before and after the switch: ``{when: (cfg, path)}``."""
    out = {}
    for when, stop_at in (("before", 9), ("after", 17)):
        cfg = tiny_config(checkpoint_every=4, seed={"before": 1, "after": 2}[when])
        stop = threading.Event()
        for row in iter_run(cfg, store=tmp_path, stop=stop):
            if row["step"] >= stop_at:
                stop.set()
        out[when] = (cfg, RunStore(tmp_path).path(cfg) / "checkpoint.npz")
        assert out[when][1].exists()
    return out


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    save_checkpoint(path, arrays)


@pytest.mark.parametrize("when,field,bad", [
    ("before", "t", np.array(-5)),
    ("after", "switch_step", np.array(10_000)),
    ("after", "t", np.array(1.5)),
    ("before", "base.params", np.full(83, np.nan, dtype=np.float32)),
    ("before", "base.params", np.zeros(83, dtype=np.float64)),
    ("after", "branches.dom.params", np.zeros(80, dtype=np.float32)),
    ("before", "format", np.array(1)),
])
def test_an_invalid_checkpoint_field_is_named_when_resuming(checkpoints, tmp_path, when, field, bad):
    from subspace_kit.experiment.checkpoint import CheckpointError
    cfg, path = checkpoints[when]
    with np.load(path, allow_pickle=False) as data:
        assert field in data.files or field == "format", sorted(data.files)
    _rewrite(path, **{field: bad})
    with pytest.raises(CheckpointError, match=repr(field)) as info:
        for _ in iter_run(cfg, store=tmp_path):
            pass
    assert str(path) in str(info.value) and "pickle" not in str(info.value)


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04 truncated"])
def test_a_corrupt_checkpoint_is_named_and_never_gets_pickle_advice(tmp_path, content):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(content)
    with pytest.raises(DamagedRun, match="checkpoint.npz is not a readable checkpoint") as info:
        load_checkpoint(path)
    assert "pickle" not in str(info.value)


def test_a_checkpoint_holding_python_objects_is_refused_without_pickle_advice(tmp_path):
    path = tmp_path / "checkpoint.npz"
    buf = io.BytesIO()
    np.savez(buf, t=np.array(3), evil=np.array([{"a": 1}], dtype=object))
    path.write_bytes(buf.getvalue())
    with pytest.raises(DamagedRun, match="Python objects") as info:
        load_checkpoint(path)
    assert "allow_pickle" not in str(info.value)


def test_every_shipped_run_is_sealed_and_intact():
    from subspace_kit.paths import shipped_runs

    entries = RunStore(shipped_runs()).entries()
    assert len(entries) >= 19
    for entry in entries:
        assert entry.status in ("completed", "stopped"), f"{entry.path}: {entry.status} {entry.message}"
        assert entry.result.summary["rows"] == len(entry.result.rows) > 0
