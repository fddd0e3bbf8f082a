"""Update rules and projections of the engine against steps computed independently here
(by formula or with ``torch.optim``), and the switch rule on scripted alignment sequences."""
import copy
import math

import pytest
import torch

from subspace_kit.experiment.optimizers import UpdateRule, make_projection
from subspace_kit.experiment.problem import Problem, trainable
from subspace_kit.experiment.switch import BiasCorrectedRule, SwitchRule, first_switch
from subspace_kit.experiment.trajectory import Trajectory
from test_engine_support import tiny, tiny_config  # noqa: F401  (fixture)

LR, BETA, B1, B2, EPS = 0.1, 0.9, 0.8, 0.95, 1e-6


def _basis(P, k, seed):
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(P, k, generator=gen, dtype=torch.float64))
    return Q


def _grads(P, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(P, generator=gen, dtype=torch.float64) for _ in range(n)]


def _rule(optimizer, project_on="update"):
    return UpdateRule(optimizer, lr=LR, momentum=BETA, beta1=B1, beta2=B2, eps=EPS, project_on=project_on)


def _torch_optimizer(optimizer, params):
    if optimizer == "momentum":
        return torch.optim.SGD(params, lr=LR, momentum=BETA)
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=LR, betas=(B1, B2), eps=EPS)
    return torch.optim.SGD(params, lr=LR)


# ---------------------------------------------------------------------------- base methods
@pytest.mark.parametrize("optimizer", ["sgd", "gd", "sam", "momentum", "adam"])
def test_unprojected_rule_matches_torch_optim_over_several_steps(optimizer):
    grads = _grads(6, 5)
    theta = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = _torch_optimizer(optimizer, [theta])
    rule = _rule(optimizer)
    for g in grads:
        before = theta.detach().clone()
        theta.grad = g.clone()
        opt.step()
        expected = before - theta.detach()
        assert torch.allclose(rule.step(g, make_projection("none", None)), expected, rtol=1e-12, atol=1e-15)


def test_sgd_step_is_lr_times_the_projected_gradient():
    g, U = _grads(6, 1)[0], _basis(6, 2, 1)
    P = U @ U.T
    for optimizer in ("sgd", "gd", "sam"):
        assert torch.allclose(_rule(optimizer).step(g, make_projection("dom", U)), LR * P @ g)
        assert torch.allclose(_rule(optimizer).step(g, make_projection("bulk", U)), LR * (g - P @ g))
        assert torch.allclose(_rule(optimizer).step(g, make_projection("interp", U, 0.5, 2.0)),
                              LR * (0.5 * P @ g + 2.0 * (g - P @ g)))


def test_momentum_projected_on_update_keeps_the_buffer_unprojected():
    g1, g2 = _grads(6, 2)
    U1, U2 = _basis(6, 2, 1), _basis(6, 2, 2)  # the basis moves between the steps
    P1, P2 = U1 @ U1.T, U2 @ U2.T
    rule = _rule("momentum", "update")
    assert torch.allclose(rule.step(g1, make_projection("dom", U1)), LR * P1 @ g1)
    assert torch.allclose(rule.step(g2, make_projection("dom", U2)), LR * P2 @ (BETA * g1 + g2))
    assert torch.allclose(rule.state["buf"], BETA * g1 + g2)


def test_momentum_projected_on_gradient_feeds_the_buffer_projected_gradients():
    g1, g2 = _grads(6, 2)
    U1, U2 = _basis(6, 2, 1), _basis(6, 2, 2)
    P1, P2 = U1 @ U1.T, U2 @ U2.T
    rule = _rule("momentum", "gradient")
    assert torch.allclose(rule.step(g1, make_projection("dom", U1)), LR * P1 @ g1)
    assert torch.allclose(rule.step(g2, make_projection("dom", U2)), LR * (BETA * P1 @ g1 + P2 @ g2))
    assert torch.allclose(rule.state["buf"], BETA * P1 @ g1 + P2 @ g2)


def _adam_reference(grads, projections, project_on):
    """Adam by its formula, with the projection applied where ``project_on`` says."""
    m = v = torch.zeros_like(grads[0])
    steps = []
    for t, (g, P) in enumerate(zip(grads, projections), start=1):
        fed = P @ g if project_on == "gradient" else g
        m = B1 * m + (1 - B1) * fed
        v = B2 * v + (1 - B2) * fed ** 2
        step = LR * (m / (1 - B1 ** t)) / ((v / (1 - B2 ** t)).sqrt() + EPS)
        steps.append(P @ step if project_on == "update" else step)
    return steps


@pytest.mark.parametrize("project_on", ["update", "gradient"])
@pytest.mark.parametrize("mode", ["dom", "bulk"])
def test_adam_projection_acts_where_project_on_says(project_on, mode):
    grads = _grads(6, 3)
    bases = [_basis(6, 2, s) for s in (1, 2, 3)]
    eye = torch.eye(6, dtype=torch.float64)
    projections = [U @ U.T if mode == "dom" else eye - U @ U.T for U in bases]
    expected = _adam_reference(grads, projections, project_on)
    rule = _rule("adam", project_on)
    for g, U, want in zip(grads, bases, expected):
        assert torch.allclose(rule.step(g, make_projection(mode, U)), want, rtol=1e-10, atol=1e-14)


def test_adam_update_and_gradient_projection_differ():
    g, U = _grads(6, 1)[0], _basis(6, 2, 1)
    on_update = _rule("adam", "update").step(g, make_projection("dom", U))
    on_gradient = _rule("adam", "gradient").step(g, make_projection("dom", U))
    assert not torch.allclose(on_update, on_gradient)


# ---------------------------------------------------------------------------- dom + bulk = base
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_dom_and_bulk_updates_sum_to_the_base_update(optimizer):
    grads = _grads(8, 4)
    U = _basis(8, 3, 5)
    rules = {mode: _rule(optimizer) for mode in ("none", "dom", "bulk")}
    for g in grads:
        steps = {mode: rule.step(g, make_projection(mode, U)) for mode, rule in rules.items()}
        assert torch.allclose(steps["dom"] + steps["bulk"], steps["none"], rtol=1e-12, atol=1e-15)
        assert abs(float(steps["dom"] @ steps["bulk"])) < 1e-12  # and they are orthogonal


@pytest.mark.parametrize("project_on", ["update", "gradient"])
@pytest.mark.parametrize("optimizer", ["sgd", "gd", "sam", "momentum", "adam"])
def test_with_k_covering_every_direction_dom_is_the_base_method_and_bulk_does_nothing(optimizer, project_on):
    grads = _grads(5, 3)
    U = torch.eye(5, dtype=torch.float64)
    rules = {mode: _rule(optimizer, project_on) for mode in ("none", "dom", "bulk")}
    for g in grads:
        base = rules["none"].step(g, make_projection("none", U))
        assert torch.allclose(rules["dom"].step(g, make_projection("dom", U)), base, rtol=1e-12, atol=1e-15)
        assert torch.count_nonzero(rules["bulk"].step(g, make_projection("bulk", U)).abs() > 1e-15) == 0


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_interp_with_weights_one_one_is_the_base_method(optimizer):
    grads = _grads(6, 3)
    U = _basis(6, 2, 7)
    base, interp = _rule(optimizer), _rule(optimizer)
    for g in grads:
        assert torch.allclose(interp.step(g, make_projection("interp", U, 1.0, 1.0)),
                              base.step(g, make_projection("none", U)), rtol=1e-12, atol=1e-15)


def test_interp_one_zero_is_dom_and_zero_one_is_bulk():
    g, U = _grads(6, 1)[0], _basis(6, 2, 3)
    assert torch.allclose(make_projection("interp", U, 1.0, 0.0)(g), make_projection("dom", U)(g))
    assert torch.allclose(make_projection("interp", U, 0.0, 1.0)(g), make_projection("bulk", U)(g))


def test_rule_state_round_trips_through_state_dict():
    grads = _grads(6, 4)
    a = _rule("adam")
    for g in grads[:2]:
        a.step(g, make_projection("none", None))
    b = _rule("adam")
    b.load_state_dict(a.state_dict())
    for g in grads[2:]:
        assert torch.equal(a.step(g, make_projection("none", None)), b.step(g, make_projection("none", None)))


# ---------------------------------------------------------------------------- a trajectory's step
def _loss_and_grad(problem, model, theta, X, Y):
    """Loss and gradient at the flat parameters ``theta``, on a copy of ``model``."""
    m = copy.deepcopy(model)
    params = [p for p in m.parameters() if p.requires_grad]
    with torch.no_grad():
        i = 0
        for p in params:
            p.copy_(theta[i:i + p.numel()].view_as(p))
            i += p.numel()
    loss = problem.loss_fn(m(X), Y)
    grads = torch.autograd.grad(loss, params)
    return float(loss.detach()), torch.cat([g.reshape(-1) for g in grads])


def _flattrainable(model):
    return torch.cat([p.detach().reshape(-1) for p in trainable(model)]).clone()


def _restore_basis(br, seed):
    """Give the branch a fixed basis, as if just refreshed."""
    P = sum(p.numel() for p in trainable(br.model))
    block = _basis(P, br.tracker.k + br.tracker.oversample, seed).to(torch.float32)
    br.tracker.restore(block, torch.arange(block.shape[1], 0, -1, dtype=torch.float32))
    br.eigs = br.tracker.result.values
    return block[:, :br.tracker.k]


@pytest.mark.parametrize("optimizer,mode,project_on", [
    ("sgd", "dom", "update"), ("sgd", "bulk", "update"), ("gd", "dom", "update"), ("gd", "bulk", "update"),
    ("sam", "dom", "update"), ("sam", "bulk", "update"), ("sam", "none", "update"),
    ("momentum", "dom", "update"), ("momentum", "bulk", "gradient"),
    ("adam", "dom", "update"), ("adam", "bulk", "gradient"),
])
def test_trajectory_step_matches_a_hand_computed_step_on_a_tiny_model(tiny, optimizer, mode, project_on):
    cfg = tiny_config(optimizer=optimizer, project_on=project_on, rho=0.3, lr=0.05, refresh_every=1000,
                      momentum=BETA, adam_beta1=B1, adam_beta2=B2, adam_eps=EPS)
    problem = Problem.build(cfg)
    br = Trajectory.start(problem, mode, torch.Generator().manual_seed(3))
    U = _restore_basis(br, seed=4)
    P = U @ U.T if mode == "dom" else (torch.eye(len(U)) - U @ U.T if mode == "bulk" else torch.eye(len(U)))
    m = v = buf = None
    for t in (1, 2):  # no refresh: the basis stays U
        theta = _flattrainable(br.model)
        if optimizer == "gd":
            X, Y = problem.X, problem.Y
        else:
            gen = torch.Generator()
            gen.set_state(br.gen.get_state())
            idx = torch.randint(len(problem.X), (cfg.batch_size,), generator=gen)
            X, Y = problem.X[idx], problem.Y[idx]
        _, g = _loss_and_grad(problem, br.model, theta, X, Y)
        if optimizer == "sam":  # the ascent point uses the unprojected gradient
            _, g = _loss_and_grad(problem, br.model, theta + cfg.rho * g / g.norm(), X, Y)
        fed = P @ g if project_on == "gradient" else g
        if optimizer == "momentum":
            buf = fed if buf is None else BETA * buf + fed
            step = cfg.lr * buf
        elif optimizer == "adam":
            m = (1 - B1) * fed if m is None else B1 * m + (1 - B1) * fed
            v = (1 - B2) * fed ** 2 if v is None else B2 * v + (1 - B2) * fed ** 2
            step = cfg.lr * (m / (1 - B1 ** t)) / ((v / (1 - B2 ** t)).sqrt() + EPS)
        else:
            step = cfg.lr * fed
        expected = theta - (P @ step if project_on == "update" else step)
        br.step(problem, t)
        assert torch.allclose(_flattrainable(br.model), expected, rtol=1e-5, atol=1e-6), (optimizer, mode, t)


def test_sam_ascent_point_is_not_projected(tiny):
    cfg = tiny_config(optimizer="sam", rho=0.5, refresh_every=1000)
    problem = Problem.build(cfg)
    br = Trajectory.start(problem, "dom", torch.Generator().manual_seed(3))
    U = _restore_basis(br, seed=4)
    theta = _flattrainable(br.model)
    gen = torch.Generator()
    gen.set_state(br.gen.get_state())
    idx = torch.randint(len(problem.X), (cfg.batch_size,), generator=gen)
    X, Y = problem.X[idx], problem.Y[idx]
    _, g = _loss_and_grad(problem, br.model, theta, X, Y)
    Pg = U @ (U.T @ g)
    _, g_true = _loss_and_grad(problem, br.model, theta + cfg.rho * g / g.norm(), X, Y)
    _, g_wrong = _loss_and_grad(problem, br.model, theta + cfg.rho * Pg / Pg.norm(), X, Y)
    right, wrong = theta - cfg.lr * U @ (U.T @ g_true), theta - cfg.lr * U @ (U.T @ g_wrong)
    assert not torch.allclose(right, wrong, rtol=1e-4, atol=1e-6)  # the test can tell them apart
    br.step(problem, 1)
    assert torch.allclose(_flattrainable(br.model), right, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_forked_dom_and_bulk_steps_sum_to_the_base_step(tiny, optimizer):
    cfg = tiny_config(optimizer=optimizer, refresh_every=1000)
    problem = Problem.build(cfg)
    base = Trajectory.start(problem, "none", torch.Generator().manual_seed(0))
    for t in range(3):  # some history, so the momentum buffer is not empty
        base.step(problem, t)
    theta = _flattrainable(base.model)
    _restore_basis(base, seed=5)
    deltas = {}
    for mode in ("none", "dom", "bulk"):
        br = base.fork(problem, mode)  # same parameters, state, minibatch RNG and basis
        br.step(problem, 3)
        deltas[mode] = theta - _flattrainable(br.model)
    assert torch.allclose(deltas["dom"] + deltas["bulk"], deltas["none"], rtol=1e-4, atol=1e-7)
    assert deltas["none"].norm() > 0 and deltas["dom"].norm() > 0 and deltas["bulk"].norm() > 0


# ---------------------------------------------------------------------------- the switch rule
def test_switch_rule_fires_at_the_hand_computed_check():
    # EMA started at the first χ (0), then n ones: 1 - 0.9^n, over 0.95 first at n = 29
    # (0.9^28 = 0.0523, 0.9^29 = 0.0471): index 29.
    assert first_switch([0.0] + [1.0] * 40, threshold=0.95, factor=0.9) == 29


def test_switch_rule_and_the_old_bias_corrected_form_fire_at_different_checks():
    chis = [0.0] + [1.0] * 40
    # The old form: (1 - 0.9^(n-1)) / (1 - 0.9^n) is 0.9492 after 11 checks, 0.9563 after 12.
    assert first_switch(chis, rule=BiasCorrectedRule) == 11
    assert first_switch(chis, rule=SwitchRule) == 29
    # ... and on a sequence that starts high the new form fires at the first check, like the old.
    assert first_switch([0.97] * 5) == first_switch([0.97] * 5, rule=BiasCorrectedRule) == 0


def test_switch_rule_is_strict_and_starts_at_the_first_chi():
    assert first_switch([0.95] * 50) is None  # strictly greater
    assert first_switch([0.951]) == 0  # the first χ is the average, not 0.1 of it


def test_switch_rule_never_fires_below_the_threshold():
    assert first_switch([0.94] * 200, threshold=0.95, factor=0.9) is None
    assert first_switch([0.0, 0.99] * 100, threshold=0.95, factor=0.9) is None  # spikes average out


def test_switch_rule_skips_missing_checks_without_resetting():
    chis = [0.0] + [1.0] * 5 + [math.nan] * 3 + [1.0] * 40
    # The NaNs neither count nor reset: the rule fires 29 finite checks after the 0, 3 entries later.
    assert first_switch(chis, threshold=0.95, factor=0.9) == 32


def test_switch_rule_matches_a_plain_ema_loop_started_at_the_first_chi():
    chis = [0.2, 0.5, 0.7, 0.8, 0.9, 0.93, 0.96, 0.97] + [0.99] * 30
    ema, fired = None, None
    for i, chi in enumerate(chis):
        ema = chi if ema is None else 0.9 * ema + 0.1 * chi
        if ema > 0.95:
            fired = i
            break
    assert fired is not None and first_switch(chis) == fired


def test_switch_rule_state_round_trips_and_refuses_the_other_form():
    a = SwitchRule(0.95, 0.9)
    for chi in (0.1, 0.6, 0.9):
        a.update(chi)
    b = SwitchRule(0.95, 0.9)
    b.load_state_dict(a.state_dict())
    assert [a.update(1.0) for _ in range(30)] == [b.update(1.0) for _ in range(30)]
    assert math.isnan(SwitchRule().value)
    with pytest.raises(ValueError, match="bias-corrected-ema"):
        SwitchRule().load_state_dict(BiasCorrectedRule().state_dict())


# ---------------------------------------------------------------------------- what the projection acts on
@pytest.mark.parametrize("optimizer,project_on", [("sgd", "update"), ("momentum", "update"), ("momentum", "gradient"),
                                                  ("adam", "update"), ("adam", "gradient")])
def test_acted_on_is_the_vector_the_projection_receives(optimizer, project_on):
    """``acted_on`` (logged as alignment_base_update) computed by hand: the unprojected momentum /
    Adam update when projecting the update, the gradient otherwise."""
    g1, g2 = _grads(6, 2)
    U = _basis(6, 2, 4)
    rule = _rule(optimizer, project_on)
    rule.step(g1, make_projection("bulk", U))
    rule.step(g2, make_projection("bulk", U))
    if optimizer == "momentum" and project_on == "update":
        want = LR * (BETA * g1 + g2)
    elif optimizer == "adam" and project_on == "update":
        m = B1 * (1 - B1) * g1 + (1 - B1) * g2
        v = B2 * (1 - B2) * g1 ** 2 + (1 - B2) * g2 ** 2
        want = LR * (m / (1 - B1 ** 2)) / ((v / (1 - B2 ** 2)).sqrt() + EPS)
    else:
        want = g2
    assert torch.allclose(rule.acted_on, want, rtol=1e-12, atol=1e-15)


def test_a_momentum_run_logs_the_base_update_and_decides_the_removed_part(tiny, tmp_path):
    from subspace_kit.experiment import run
    from subspace_kit.experiment.report import claims

    result = run(tiny_config(optimizer="momentum", project_on="update"), store=tmp_path)
    bulk = result.main_rows("bulk")
    assert all(0 <= r["alignment_base_update"] <= 1 for r in bulk)
    assert any(abs(r["alignment_base_update"] - r["alignment_batch"]) > 1e-3 for r in bulk)  # not the gradient
    removed = [c for c in claims(result) if c.key == "removed_part"][0]
    assert removed.verdict in ("yes", "no") and removed.values["column"] == "alignment_base_update"
    assert result.summary["num_parameters"] == sum(p.numel() for p in trainable(Problem.build(result.config).template))
