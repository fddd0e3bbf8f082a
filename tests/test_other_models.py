"""The CNN and Transformer experiments through the engine (issue 6): the class presets, short
Dom/Bulk runs of each model, data options in the config, and where the run's tensors live."""
from __future__ import annotations

import hashlib
import json
import math
import sys
import threading
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

import subspace_kit
from subspace_kit.datasets import DataUnavailable, load
from subspace_kit.experiment import RunConfig, iter_run, run
from subspace_kit.experiment.config import PROTOCOL_VERSION, resolve_device
from subspace_kit.experiment.runner import Problem

# Seconds-long versions of the class presets: same model, data, loss, step size and k.
SMOKE = dict(n_train=200, hessian_samples=50, steps=20, switch="step", switch_step=10, refresh_every=5,
             log_every=5, switch_check_every=10, checkpoint_every=10)


def _needs(name: str, **options):
    try:
        load(name, download=False, **options)
    except DataUnavailable as exc:
        pytest.skip(f"{name} is not available here: {exc}")


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy 2-core machine two threads contend with everything else
    yield
    torch.set_num_threads(previous)


# ---------------------------------------------------------------------------- presets
def test_class_presets_name_the_model_data_and_protocol_they_document():
    cnn, transformer = RunConfig.preset("cnn-class"), RunConfig.preset("transformer-class")
    assert (cnn.model, cnn.dataset, cnn.loss, cnn.k) == ("cnn", "fashion-mnist-5k", "mse", 10)
    assert (transformer.model, transformer.dataset, transformer.loss) == ("transformer", "sst2-1k", "mse")
    assert transformer.k == 2
    assert transformer.data_source == "substitute"  # offline, and the same data wherever it runs
    for cfg in (cnn, transformer):
        assert cfg.modes == ("none", "dom", "bulk") and cfg.optimizer == "sgd" and cfg.batch_size == 50
        assert cfg.switch == "step" and 0 < cfg.switch_step < cfg.steps
        assert cfg.hessian_samples <= (cfg.n_train or 5000)


def test_class_presets_round_trip_through_dict_and_reject_unknown_keys():
    for name in ("cnn-class", "transformer-class"):
        cfg = RunConfig.preset(name)
        assert RunConfig.from_dict(cfg.to_dict()) == cfg
        assert RunConfig.from_dict({"preset": name, "lr": 0.02}).lr == 0.02
        with pytest.raises(ValueError, match="unknown config key 'vocab'"):
            RunConfig.from_dict({"preset": name, "vocab": 100})
        with pytest.raises(ValueError, match="unknown config key"):
            RunConfig.preset(name, hessian_sample=10)


def test_data_source_is_checked_and_applies_to_sst2_only():
    with pytest.raises(ValueError, match="data_source"):
        RunConfig.preset("transformer-class", data_source="imdb")
    with pytest.raises(ValueError, match="data_source='glue' applies to dataset 'sst2-1k' only"):
        RunConfig(dataset="mnist-5k", data_source="glue")


def test_data_source_at_its_default_leaves_existing_store_keys_unchanged():
    cfg = RunConfig.preset("class")
    before = cfg.to_dict()
    for late in ("data_source", "refresh_method", "refresh_columns", "certify_every"):
        del before[late]  # the config as it was before these fields existed
    payload = json.dumps({"protocol": PROTOCOL_VERSION, **before}, sort_keys=True)
    assert cfg.key() == hashlib.sha256(payload.encode()).hexdigest()[:16]
    sst = RunConfig.preset("transformer-class")
    assert sst.key() != sst.replace(data_source="auto").key()  # pinned data is part of the identity


# ---------------------------------------------------------------------------- devices
def test_unknown_device_names_the_field():
    with pytest.raises(ValueError, match="device"):
        RunConfig(device="gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_clear_value_error_not_a_cpu_fallback():
    cfg = RunConfig.preset("smoke", device="cuda")  # a GPU machine's config still loads here ...
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device(cfg.device)
    with pytest.raises(ValueError, match="device='cuda'"):  # ... but does not run
        Problem.build(cfg)


PACKAGE = str(Path(subspace_kit.__file__).parent)
FACTORIES = {"zeros", "ones", "full", "empty", "tensor", "as_tensor", "arange", "randn", "rand", "randint",
             "randperm", "eye", "linspace"}
# Host tensors on purpose, each moved to the run's device at once (or a host-side scalar).
HOST_ON_PURPOSE = {
    ("eigen.py", "lanczos_tridiagonal"): "Lanczos tridiagonal coefficients (float64, a tiny eigh)",
    ("eigen.py", "seeded_block"): "start block from a host generator: the same on every device",
    ("tracker.py", "_probe"): "random probes from a host generator, moved at once",
    ("experiment/optimizers.py", "gradient"): "minibatch indices from the branch's host generator, moved at once",
    ("experiment/problem.py", "build"): "data order, drawn before the data move to the device",
    ("experiment/optimizers.py", "_base_step"): "Adam's step counter, a host integer",
}


class FactoryAudit(TorchFunctionMode):
    """Records tensor factories called from the kit without a ``device=``: (file, function)."""

    def __init__(self):
        super().__init__()
        self.sites: dict[tuple[str, str], int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in FACTORIES and "device" not in kwargs:
            frame = sys._getframe(1)
            while frame is not None and not frame.f_code.co_filename.startswith(PACKAGE):
                frame = frame.f_back
            if frame is not None:
                site = (Path(frame.f_code.co_filename).relative_to(PACKAGE).as_posix(), frame.f_code.co_name)
                self.sites[site] = self.sites.get(site, 0) + 1
        return func(*args, **kwargs)


def test_every_tensor_the_run_creates_names_its_device_or_is_host_on_purpose(tmp_path):
    """No GPU here, so instead of checking where tensors land, check that every tensor factory
    the kit calls during a run (fresh start, cold and warm tracker, Adam's state, stop, resume
    from the checkpoint) is given the device, apart from the deliberate host-side sites above."""
    cfg = RunConfig.preset("smoke", optimizer="adam", lr=0.001, n_train=100, hessian_samples=50, steps=16,
                           switch_step=8, refresh_every=2, log_every=2, switch_check_every=4,
                           checkpoint_every=4)
    stop = threading.Event()
    audit = FactoryAudit()
    with audit:
        for row in iter_run(cfg, store=tmp_path, stop=stop):
            if row["phase"] == "main" and row["step"] >= 12:
                stop.set()
        resumed = run(cfg, store=tmp_path)
    assert resumed.status == "completed"
    unexpected = {site: n for site, n in audit.sites.items() if site not in HOST_ON_PURPOSE}
    assert not unexpected, f"tensors created without device= (would stay on the CPU on a GPU run): {unexpected}"


# ---------------------------------------------------------------------------- the models end to end
def _main_rows(result, mode):
    return [r for r in result.rows if r["phase"] == "main" and r["mode"] == mode]


def _check_dom_bulk_run(result):
    assert result.status == "completed", result.summary
    for mode in ("none", "dom", "bulk"):
        rows = _main_rows(result, mode)
        assert rows and all(math.isfinite(r["train_loss"]) for r in rows)
    # The applied update lies in the dominant subspace for Dom and is orthogonal to it for Bulk.
    assert all(r["alignment_update"] > 0.999 for r in _main_rows(result, "dom"))
    assert all(r["alignment_update"] < 1e-3 for r in _main_rows(result, "bulk"))


def test_cnn_dom_bulk_run_end_to_end(tmp_path):
    _needs("fashion-mnist-5k")
    cfg = RunConfig.preset("cnn-class", **SMOKE)
    problem = Problem.build(cfg)
    assert problem.X.shape[1:] == (784,) and problem.X.dtype == torch.float32
    assert type(problem.template).__name__ == "PaperCNN"
    _check_dom_bulk_run(run(cfg, store=tmp_path))


def test_transformer_dom_bulk_run_end_to_end(tmp_path):
    _needs("sst2-1k", source="substitute")
    cfg = RunConfig.preset("transformer-class", **SMOKE)
    problem = Problem.build(cfg)
    assert problem.X.dtype == torch.int64  # token ids are never cast to the float dtype
    data = load("sst2-1k", source="substitute", download=False)
    assert problem.template.tokens.num_embeddings == data.meta["vocab_size"]  # build_model got data=
    assert "substitute" in problem.source
    _check_dom_bulk_run(run(cfg, store=tmp_path))
