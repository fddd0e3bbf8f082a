"""The cheap refresh inside the engine (``refresh_method="rotate"``): its cadence, the certification
it logs, its cost in Hessian-vector products, resume, and that protocol-1 configs keep their keys."""
import json
import math
import threading
from pathlib import Path

import pytest
import torch

from subspace_kit.experiment import run
from subspace_kit.experiment.config import RunConfig
from subspace_kit.experiment.metrics import columns
from subspace_kit.experiment.runner import refresh_kind
from subspace_kit.theory.angles import principal_angles
from subspace_kit.tracker import SubspaceTracker
from test_engine_support import assert_same_rows, tiny, tiny_config  # noqa: F401  (fixture)

INDEX = Path(__file__).parents[1] / "data" / "runs" / "index.json"
ROTATE = dict(refresh_method="rotate", refresh_columns=1, refresh_every=1, certify_every=4)


def _projected(rows, mode):
    return [r for r in rows if r["phase"] == "main" and r["mode"] == mode]


def test_protocol_one_configs_keep_their_store_keys():
    """The new fields stay out of the hash at their defaults: every shipped run is still found."""
    for name, entry in json.loads(INDEX.read_text())["runs"].items():
        assert RunConfig.from_dict(entry["config"]).key() == entry["key"], name
    base = RunConfig.preset("class")
    assert base.replace(refresh_method="rotate").key() != base.key()
    assert base.replace(refresh_method="rotate", certify_every=50).key() != base.replace(refresh_method="rotate").key()


@pytest.mark.parametrize("bad,message", [
    (dict(refresh_method="lanczos"), "refresh_method"),
    (dict(refresh_columns=0), "refresh_columns"),
    (dict(k=3, refresh_method="rotate", refresh_columns=4), "refresh_columns"),
    (dict(certify_every=0), "certify_every"),
])
def test_bad_refresh_settings_are_refused_by_name(bad, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.preset("smoke", **bad)


def test_a_k_of_one_keeps_the_default_columns_unless_it_rotates():
    assert RunConfig.preset("smoke", k=1).refresh_columns == 2
    assert RunConfig.preset("smoke", k=1, refresh_method="rotate", refresh_columns=1).k == 1


def test_refresh_cadence():
    cfg = RunConfig.preset("smoke", refresh_method="rotate", refresh_every=2, certify_every=6)
    kinds = [refresh_kind(cfg, "dom", since, False) for since in range(8)]
    assert kinds == ["certify", None, "rotate", None, "rotate", None, "certify", None]
    assert refresh_kind(cfg, "none", 3, True) == "full" and refresh_kind(cfg, "none", 3, False) is None
    full = RunConfig.preset("smoke", refresh_every=2)
    assert [refresh_kind(full, "bulk", s, False) for s in range(4)] == ["full", None, "full", None]


def test_a_rotate_run_certifies_on_schedule_and_logs_the_angle(tiny, tmp_path):
    cfg = tiny_config(**ROTATE)
    result = run(cfg, store=tmp_path)
    assert result.status == "completed" and "subspace_sin" in columns(cfg)
    assert "subspace_sin" not in columns(tiny_config())
    for mode in ("dom", "bulk"):
        rows = _projected(result.rows, mode)
        certified = {r["step"] - cfg.switch_step for r in rows if math.isfinite(r["subspace_sin"])}
        assert certified == set(range(0, cfg.steps - cfg.switch_step, cfg.certify_every))
        for r in rows:
            if math.isfinite(r["subspace_sin"]):
                assert 0 <= r["subspace_sin"] <= 1 and r["tracker_residual"] <= cfg.tracker_tol
            else:  # a rotation measures no residual
                assert math.isnan(r["tracker_residual"])
        # Between certifications a step costs exactly refresh_columns products.
        by_step = {r["step"]: r["hvps"] for r in rows}
        for since in range(1, cfg.certify_every - 1):
            t = cfg.switch_step + since
            if t in by_step and t + 1 in by_step:
                assert by_step[t + 1] - by_step[t] == cfg.refresh_columns
    # Unprojected rows carry no angle.
    assert all(math.isnan(r["subspace_sin"]) for r in result.rows if r["mode"] == "none")


def test_the_logged_angle_is_between_the_rotated_and_the_certified_basis(tiny, tmp_path, monkeypatch):
    """Recompute one certification by hand: the rotation the step would have made, then the full
    update, from the same tracker state."""
    seen = []
    original = SubspaceTracker.update

    def spy(self, H, *, refresh="full", columns=2):
        before = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in self.state_dict().items()}
        result = original(self, H, refresh=refresh, columns=columns)
        seen.append((refresh, before, result.vectors.clone(), H))
        return result

    monkeypatch.setattr(SubspaceTracker, "update", spy)
    cfg = tiny_config(**ROTATE, modes=("dom",))
    result = run(cfg, store=tmp_path)
    logged = [r["subspace_sin"] for r in _projected(result.rows, "dom") if math.isfinite(r["subspace_sin"])]
    pairs = [(a, b) for a, b in zip(seen, seen[1:]) if a[0] == "rotate" and b[0] == "full" and a[3] is b[3]]
    assert len(pairs) == len(logged) > 1
    for (_, _, rotated, _), (_, _, certified, _), value in zip(*zip(*pairs), logged):
        assert value == pytest.approx(float(principal_angles(rotated, certified)[0]), abs=1e-6)
    assert max(logged[1:]) > 0  # the rotation does lag the exact subspace


def test_a_stopped_rotate_run_resumes_to_the_same_rows(tiny, tmp_path):
    cfg = tiny_config(**ROTATE)
    reference = run(cfg, store=tmp_path / "reference")
    stop = threading.Event()
    stopped = run(cfg, store=tmp_path / "run", stop=stop, on_row=lambda r: r["step"] >= 18 and stop.set())
    assert stopped.status == "stopped"
    resumed = run(cfg, store=tmp_path / "run")
    assert resumed.status == "completed"
    assert_same_rows(resumed.rows, reference.rows)
    assert resumed.summary["hvps"] == reference.summary["hvps"]


def test_the_shipped_reference_run_holds_what_its_label_says():
    """data/runs' reference run (README, notebooks 04 and 14, benchmarks/results/reference.md): the
    paper's protocol run to the end, switched by the rule, its subspace certified every
    ``certify_every`` steps on both projected branches, and within the bound the text states."""
    from subspace_kit.experiment.shipped import stored_shipped

    run = stored_shipped("reference")
    assert run is not None and run.config == RunConfig.preset("reference")
    cfg = run.config
    assert run.status == "completed" and max(r["step"] for r in run.rows) == cfg.steps - 1
    assert run.summary["switch_reason"].startswith("rule fired") and run.switch_step < cfg.max_switch_step
    for mode in ("dom", "bulk"):
        rows = run.main_rows(mode, "subspace_sin")
        assert [r["step"] for r in rows] == list(range(run.switch_step, cfg.steps, cfg.certify_every))
        assert max(r["subspace_sin"] for r in rows[1:]) <= 0.05
        assert max(r["tracker_residual"] for r in rows) <= cfg.tracker_tol
