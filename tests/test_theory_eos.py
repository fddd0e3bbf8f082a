"""Edge of Stability toys: analytic derivatives, the period-2 orbit at 2/η, and the contrast model."""
import numpy as np
import pytest
import torch
from torch.autograd.functional import hessian, jacobian

from subspace_kit.theory import ScalarFactorization, SelfStabilization, simulate_eos


@pytest.mark.parametrize("model", [SelfStabilization(), SelfStabilization(s0=1.3, flat=0.4, target=-0.2),
                                   ScalarFactorization()])
def test_analytic_gradient_and_hessian_match_autodiff(model):
    def loss(theta):
        x, y = theta
        if isinstance(model, ScalarFactorization):
            return 0.5 * (x * y - 1) ** 2
        return 0.5 * model.flat * (y - model.target) ** 2 + 0.5 * (model.s0 + y) * x ** 2

    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        theta = torch.randn(2, generator=gen, dtype=torch.float64)
        assert model.loss(theta) == pytest.approx(float(loss(theta)), rel=1e-12)
        assert torch.allclose(model.gradient(theta), jacobian(loss, theta), rtol=1e-12, atol=1e-14)
        assert torch.allclose(model.hessian(theta), hessian(loss, theta), rtol=1e-12, atol=1e-14)


def test_gd_sharpens_then_settles_on_the_period_two_orbit_at_the_edge():
    model, lr = SelfStabilization(), 1.0
    run = simulate_eos(model, lr=lr, steps=2000)
    orbit = model.edge_orbit(lr)
    assert orbit.stable
    assert run.sharpness[0] < 0.3 * run.edge  # progressive sharpening from well below 2/η
    late = slice(1500, None)
    assert np.abs(run.sharpness[late] / run.edge - 1).max() < 0.02  # hovers at 2/η
    assert np.abs(np.abs(run.path[late, 0]) - orbit.amplitude).max() < 1e-6
    assert np.abs(run.path[late, 1] - orbit.y).max() < 1e-6
    assert np.all(np.sign(run.path[1500:-1, 0]) == -np.sign(run.path[1501:, 0]))  # flips every step
    assert run.alignment[late].min() > 0.98  # ∇L is almost all oscillation
    # Half the step along u is x̄ times the cosine between u and the x-axis, i.e. χ here.
    assert np.allclose(run.amplitude[1500:], orbit.amplitude * run.alignment[1500:-1], rtol=1e-6)
    assert run.loss[-1] > 0.1 * run.loss[0]  # and no progress: the loss stays put


def test_the_overshoot_above_the_edge_is_where_the_docstring_says():
    # theory/eos.py: crosses 2/η at step 18, peaks at 1.15 × 2/η at step 89, settles at 1.0155.
    run = simulate_eos(SelfStabilization(), lr=1.0, steps=2000)
    ratio = run.sharpness / run.edge
    assert int(np.argmax(ratio >= 1.0)) == 18
    assert int(np.nanargmax(ratio)) == 89 and ratio.max() == pytest.approx(1.15, abs=0.005)
    assert ratio[20] < 1.05  # not near step 20: the peak comes about 70 steps after the crossing
    assert ratio[-1] == pytest.approx(1.0155, abs=5e-4)


def test_beyond_the_stability_boundary_the_sharpness_keeps_moving():
    model, lr = SelfStabilization(target=2.1), 1.0  # η (y* − y_edge) = 0.6 > ½
    assert not model.edge_orbit(lr).stable
    run = simulate_eos(model, lr=lr, steps=2000)
    late = run.sharpness[1000:] / run.edge
    assert late.max() - late.min() > 0.2
    assert abs(np.mean(late) - 1) < 0.2


def test_below_the_edge_gd_converges_to_the_minimum():
    model, lr = SelfStabilization(target=1.2), 1.0  # S(y*) = 1.7 < 2/η
    assert model.edge_orbit(lr) is None
    run = simulate_eos(model, lr=lr, steps=1000)
    assert run.loss[-1] < 1e-20
    assert run.sharpness[-1] == pytest.approx(1.7, rel=1e-9)


def test_bulk_gd_descends_past_the_edge_and_dom_gd_makes_no_progress():
    model, lr = SelfStabilization(), 1.0
    bulk = simulate_eos(model, lr=lr, steps=600, method="bulk_gd")
    dom = simulate_eos(model, lr=lr, steps=600, method="dom_gd")
    assert bulk.loss[-1] < 1e-3 * bulk.loss[0]
    assert bulk.sharpness[-1] > 1.1 * bulk.edge  # sharper than GD could ever be stable at
    assert dom.loss[-1] > 0.99 * dom.loss[0]


def test_scalar_factorization_catapults_below_the_edge_instead_of_hovering():
    run = simulate_eos(ScalarFactorization(), lr=0.8, steps=200, start=(0.05, 1.6))
    assert run.sharpness[0] > run.edge
    assert run.loss[-1] < 1e-12
    assert 0.7 * run.edge < run.sharpness[-1] < run.edge


def test_bad_arguments_raise_value_errors_naming_them():
    with pytest.raises(ValueError, match="method"):
        simulate_eos(SelfStabilization(), lr=1.0, steps=3, method="sgd")
    with pytest.raises(ValueError, match="flat"):
        SelfStabilization(flat=0.0)
    with pytest.raises(ValueError, match="lr"):
        SelfStabilization().edge_orbit(-1.0)
