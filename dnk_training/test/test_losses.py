"""Each loss of (13)-(19) on hand-made batches with hand-computed values."""
import pytest
import torch

from dnk_training.losses import (
    LossConfig,
    act_loss,
    gain_loss,
    inv_loss,
    lat_loss,
    pred_loss,
    rec_loss,
    weighted_total,
)


def test_squared_errors_average_over_entries_per_sample():
    x = torch.zeros(2, 2, 2)
    y = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 0.0]]])
    # sample 0: (1 + 1) / 4 = 0.5 ; sample 1: 4 / 4 = 1
    for fn in (rec_loss, pred_loss):
        assert torch.allclose(fn(y, x), torch.tensor([0.5, 1.0]))
    z_hat = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
    z = torch.tensor([[0.0, 1.0], [0.0, 0.0]], requires_grad=True)
    assert torch.allclose(lat_loss(z_hat, z), torch.tensor([0.5, 4.5]))


def test_lat_loss_stops_gradient_into_target():
    z_hat = torch.ones(1, 3, requires_grad=True)
    z = torch.zeros(1, 3, requires_grad=True)
    lat_loss(z_hat, z).sum().backward()
    assert z.grad is None
    assert torch.allclose(z_hat.grad, torch.full((1, 3), 2.0 / 3))


def test_action_loss_weights_first_action():
    a = torch.zeros(1, 3, 2)
    a_hat = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [0.0, 0.0]]])
    # per-step mean sq err: [1, 2, 0]; weights [10, 1, 1] -> (10 + 2 + 0) / 12 = 1
    assert torch.allclose(act_loss(a_hat, a, 10.0, 1.0, action_row=0), torch.tensor([1.0]))
    # only a later step wrong: (0 + 2 + 0) / 12
    a_hat2 = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]]])
    assert torch.allclose(act_loss(a_hat2, a, 10.0, 1.0, action_row=0), torch.tensor([2.0 / 12]))


def test_action_loss_weight_follows_the_executed_row():
    """The arm executes row 1 (row 0 is the re-imposed measured state): w_first must land there."""
    a = torch.zeros(1, 3, 2)
    row1_wrong = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]]])   # per-step errors [0, 2, 0]
    assert torch.allclose(act_loss(row1_wrong, a, 10.0, 1.0, action_row=1), torch.tensor([20.0 / 12]))
    assert torch.allclose(act_loss(row1_wrong, a, 10.0, 1.0, action_row=0), torch.tensor([2.0 / 12]))


def test_gain_loss_zero_inside_bound_and_quadratic_outside():
    assert gain_loss(torch.tensor([[0.3, -1.0, 0.99]]), 1.0) == 0
    # relu(|g| - 1)^2 = [0.25, 1, 0, 0] -> mean 0.3125
    g = torch.tensor([[1.5, -2.0], [0.5, -0.5]])
    assert torch.isclose(gain_loss(g, 1.0), torch.tensor(0.3125))


def test_inverse_loss_zero_for_exact_inverse_and_frobenius_otherwise():
    u = torch.tensor([[2.0, 1.0], [1.0, 1.0]])
    assert inv_loss(torch.linalg.inv(u), u) < 1e-10
    # V U = diag(2, 1) -> ||diag(1, 0)||_F^2 = 1
    assert torch.isclose(inv_loss(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.eye(2)), torch.tensor(1.0))


def test_weighted_total_matches_equation_19():
    cfg = LossConfig(l_rec=1.0, l_pred=2.0, l_gain=3.0, l_inv=0.5)
    terms = {"rec": torch.tensor([1.0, 3.0]), "pred": torch.tensor([0.0, 1.0])}
    w = torch.tensor([0.5, 1.5])
    regs = {"gain": torch.tensor(0.1), "inv": torch.tensor(2.0)}
    total, logs = weighted_total(terms, w, cfg, regs)
    # per-sample: [1 + 0, 3 + 2] = [1, 5]; weighted mean (0.5 + 7.5) / 2 = 4; + 0.3 + 1.0
    assert torch.isclose(total, torch.tensor(5.3))
    assert logs["rec"] == pytest.approx((0.5 + 4.5) / 2)
    assert logs["gain"] == pytest.approx(0.1)


def test_defaults_are_the_method_defaults():
    c = LossConfig()
    assert (c.w_first, c.w_rest, c.rho, c.w_min, c.w_max) == (10.0, 1.0, 1.0, 0.5, 1.5)
