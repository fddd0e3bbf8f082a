"""The ill-conditioned valley: simulation against the exact moment recursion and the story."""
import numpy as np
import pytest

from subspace_kit.theory import Valley

LR = 0.5


def test_expected_loss_matches_the_monte_carlo_mean_within_sampling_error():
    valley = Valley()
    for method in ("sgd", "dom_sgd", "bulk_sgd"):
        run = valley.simulate(method, lr=LR, steps=300, chains=4000, seed=1)
        exact = valley.expected_loss(method, lr=LR, steps=300)
        for t in (5, 50, 300):
            sample = run.loss[t]
            standard_error = sample.std(ddof=1) / np.sqrt(len(sample))
            # 5 standard errors: a false alarm has probability < 1e-6 per check.
            assert abs(sample.mean() - exact[t]) <= 5 * standard_error, (method, t)


def test_loss_floor_is_the_limit_of_the_expected_loss():
    valley = Valley()
    start = (0.02, 0.4)
    for method in ("gd", "sgd", "dom_sgd", "bulk_sgd", "dom_gd", "bulk_gd"):
        late = valley.expected_loss(method, lr=LR, steps=30000, start=start)[-1]
        assert late == pytest.approx(valley.loss_floor(method, lr=LR, start=start), rel=1e-6, abs=1e-14)


def test_dom_floor_formula():
    valley = Valley(a=2.0, b=0.01, c=0.1)
    x0, y0, lr = 0.3, 2.0, 0.4
    expected = 0.5 * 0.01 * y0 ** 2 + lr * 0.1 ** 2 * y0 ** 2 / (2 * (2 - lr * 2.0))
    assert valley.loss_floor("dom_sgd", lr=lr, start=(x0, y0)) == pytest.approx(expected, rel=1e-12)


def test_sgd_gradient_is_aligned_with_the_sharp_direction_and_gd_is_not():
    valley = Valley()
    sgd = valley.simulate("sgd", lr=LR, steps=3000)
    gd = valley.simulate("gd", lr=LR, steps=3000)
    assert sgd.alignment[500:].mean() > 0.9
    assert gd.alignment[-1] < 0.01
    assert np.allclose(np.abs(sgd.basis[:, 0]), [1.0, 0.0])  # top eigenvector of diag(a, b)


def test_after_the_switch_dom_sgd_stalls_and_bulk_sgd_keeps_descending():
    valley = Valley()
    switch = valley.simulate("sgd", lr=LR, steps=1000).path[-1]
    at_switch = valley.loss(switch)
    dom = valley.simulate("dom_sgd", lr=LR, steps=2000, start=switch, chains=200, seed=2).mean_loss
    bulk = valley.simulate("bulk_sgd", lr=LR, steps=2000, start=switch, chains=200, seed=2).mean_loss
    sgd = valley.simulate("sgd", lr=LR, steps=2000, start=switch, chains=200, seed=2).mean_loss
    assert dom[-1] > 0.9 * at_switch
    assert bulk[-1] < 0.2 * at_switch and sgd[-1] < 0.2 * at_switch


def test_same_seed_same_run_and_chains_are_independent():
    valley = Valley()
    a = valley.simulate("sgd", lr=LR, steps=50, chains=3, seed=7)
    b = valley.simulate("sgd", lr=LR, steps=50, chains=3, seed=7)
    c = valley.simulate("sgd", lr=LR, steps=50, chains=3, seed=8)
    assert np.array_equal(a.loss, b.loss) and np.array_equal(a.path, b.path)
    assert not np.array_equal(a.loss, c.loss)
    assert not np.array_equal(a.loss[:, 0], a.loss[:, 1])


def test_bad_arguments_raise_value_errors_naming_them():
    with pytest.raises(ValueError, match="a must be larger than b"):
        Valley(a=0.1, b=1.0)
    with pytest.raises(ValueError, match="method"):
        Valley().simulate("adam", lr=LR, steps=3)
    with pytest.raises(ValueError, match="lr"):
        Valley().simulate("sgd", lr=0.0, steps=3)
    with pytest.raises(ValueError, match="start"):
        Valley().simulate("sgd", lr=LR, steps=3, start=(1.0, 2.0, 3.0))


def test_gd_alignment_decays_geometrically_by_the_predicted_factor():
    valley = Valley()
    for lr in (0.5, 0.8, 1.5):
        chi = valley.simulate("gd", lr=lr, steps=60).alignment
        t = int(np.flatnonzero(chi < 0.1)[0])  # the small-χ regime the factor describes
        measured = (chi[t + 10] / chi[t]) ** (1 / 10)
        assert measured == pytest.approx(valley.gd_alignment_factor(lr=lr), rel=1e-3)
        assert chi[t + 10] > 0  # geometric decay, not exactly 0 after a few steps


def test_gd_alignment_factor_rejects_a_step_that_diverges_along_y():
    with pytest.raises(ValueError, match="lr must be below 2/b"):
        Valley().gd_alignment_factor(lr=2000.0)
