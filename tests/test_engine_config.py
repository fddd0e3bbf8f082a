"""RunConfig: bad input is rejected with a ValueError naming the field; keys are stable."""
import json

import numpy as np
import pytest

from subspace_kit.experiment import PRESETS, RunConfig, iter_run
from test_engine_support import TINY_PARAMS, tiny, tiny_config  # noqa: F401  (fixture)


@pytest.mark.parametrize("field,overrides", [
    ("lr", dict(lr=0.0)),
    ("lr", dict(lr=-0.01)),
    ("lr", dict(lr=float("nan"))),
    ("rho", dict(rho=-0.1)),
    ("momentum", dict(momentum=1.0)),
    ("momentum", dict(momentum=-0.1)),
    ("k", dict(k=0)),
    ("batch_size", dict(batch_size=501)),  # smoke has n_train=500
    ("batch_size", dict(batch_size=0)),
    ("optimizer", dict(optimizer="rmsprop")),
    ("modes", dict(modes=("none", "sideways"))),
    ("modes", dict(modes=())),
    ("interp_beta", dict(modes=("interp",), interp_alpha=1.0)),
    ("interp_alpha", dict(modes=("interp",), interp_beta=1.0)),
    ("refresh_every", dict(refresh_every=0)),
    ("project_on", dict(project_on="state")),
    ("dataset", dict(dataset="imagenet")),
    ("model", dict(model="resnet")),
    ("steps", dict(steps=0)),
    ("switch", dict(switch="sometimes")),
])
def test_bad_field_raises_value_error_naming_it(field, overrides):
    with pytest.raises(ValueError, match=field):
        RunConfig.preset("smoke", **overrides)


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="preset.*'nope'"):
        RunConfig.preset("nope")


def test_unknown_override_is_named():
    with pytest.raises(ValueError, match="'learning_rate'"):
        RunConfig.preset("smoke", learning_rate=0.1)


def test_config_file_with_an_unknown_key_is_rejected_naming_the_key(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"preset": "smoke", "lr": 0.02, "learnig_rate": 0.1}))
    with pytest.raises(ValueError, match="'learnig_rate'"):
        RunConfig.from_json(path)


def test_config_file_with_a_bad_value_names_the_field(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"preset": "smoke", "momentum": 1.5}))
    with pytest.raises(ValueError, match="momentum"):
        RunConfig.from_json(path)


def test_k_not_below_the_number_of_parameters_is_rejected_when_the_run_starts(tiny, tmp_path):
    with pytest.raises(ValueError, match="k must be smaller than the number of parameters"):
        next(iter_run(tiny_config(k=TINY_PARAMS), store=tmp_path))
    assert not any(tmp_path.iterdir())  # nothing written for a rejected config


def test_batch_size_larger_than_the_data_set_is_rejected_when_the_run_starts(tiny, tmp_path):
    # n_train=None: the size of the data set is only known once it is loaded (96 samples).
    with pytest.raises(ValueError, match="batch_size=97"):
        next(iter_run(tiny_config(n_train=None, batch_size=97), store=tmp_path))


def test_gd_ignores_batch_size():
    assert RunConfig.preset("smoke", optimizer="gd", batch_size=10_000).optimizer == "gd"


def test_every_preset_is_valid():
    for name in PRESETS:
        RunConfig.preset(name)


def test_config_round_trips_through_json_with_the_same_key(tmp_path):
    cfg = RunConfig.preset("smoke", modes=("dom", "interp"), interp_alpha=1.0, interp_beta=2.0, lr=0.02)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg.to_dict()))
    back = RunConfig.from_json(path)
    assert back == cfg and back.key() == cfg.key()


def test_numbers_of_either_type_give_one_config_and_one_key():
    a = RunConfig.preset("smoke", lr=1, k=3)
    b = RunConfig.preset("smoke", lr=1.0, k=3.0)
    assert a == b and a.key() == b.key()
    assert isinstance(b.k, int) and isinstance(a.lr, float)


def test_modes_may_be_a_comma_separated_string():
    assert RunConfig.preset("smoke", modes="none, bulk").modes == ("none", "bulk")


def test_key_changes_with_any_field_and_phase1_key_ignores_the_modes():
    cfg = RunConfig.preset("smoke")
    assert cfg.replace(seed=1).key() != cfg.key()
    assert cfg.replace(modes=("bulk",)).key() != cfg.key()
    assert cfg.replace(modes=("bulk",)).phase1_key() == cfg.phase1_key()
    assert cfg.replace(lr=0.02).phase1_key() != cfg.phase1_key()


# ---------------------------------------------------------------------------- types and ranges
@pytest.mark.parametrize("field,overrides", [
    ("modes", dict(modes=5)),
    ("modes", dict(modes={"none": 1})),
    ("lr", dict(lr=True)),
    ("lr", dict(lr="0.1")),
    ("momentum", dict(momentum=False)),
    ("interp_alpha", dict(modes=("interp",), interp_alpha=True, interp_beta=1.0)),
    ("k", dict(k=True)),
    ("k", dict(k=np.bool_(True))),
    ("seed", dict(seed=2 ** 64)),
    ("seed", dict(seed=-1)),
    ("oversample", dict(oversample=1e9)),
    ("oversample", dict(oversample=257)),
    ("device", dict(device=5)),
])
def test_bad_type_or_range_raises_value_error_naming_the_field(field, overrides):
    with pytest.raises(ValueError, match=field):
        RunConfig.preset("smoke", **overrides)


def test_the_seed_message_gives_the_range_torch_accepts():
    with pytest.raises(ValueError, match=r"seed must be in \[0, 18446744073709551615\], got 18446744073709551616"):
        RunConfig.preset("smoke", seed=2 ** 64)
    assert RunConfig.preset("smoke", seed=2 ** 64 - 1).seed == 2 ** 64 - 1


def test_numpy_numbers_are_numbers_and_give_the_same_key():
    plain = RunConfig.preset("smoke", k=3, lr=0.02, oversample=4, seed=7)
    numpy = RunConfig.preset("smoke", k=np.int64(3), lr=np.float64(0.02), oversample=np.uint8(4),
                             seed=np.float64(7.0))
    assert numpy == plain and numpy.key() == plain.key()
    assert type(numpy.k) is int and type(numpy.seed) is int
    assert RunConfig.preset("smoke", lr=np.float32(0.5)).lr == 0.5
    with pytest.raises(ValueError, match="k must be an integer"):
        RunConfig.preset("smoke", k=np.float64(2.5))
