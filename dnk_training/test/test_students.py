"""Every student, trained briefly on toy pairs, beats its untrained self on held-out pairs.

Toy teacher: data x0 ~ N(mu, s^2) entrywise, so the exact denoiser E[x0 | x_n] is linear and the
teacher (deterministic DDIM on a cosine grid, fixed entries re-imposed) is known in closed form.
"""
import pytest
import torch

from dnk_training.configs import TrainConfig
from dnk_training.diffusion import Schedule
from dnk_training.pairs import condition_prior
from dnk_training.students import (
    ConsistencyConfig,
    ConsistencyStudent,
    FDKConfig,
    FDKStudent,
    KDMConfig,
    KDMFConfig,
    KDMFStudent,
    KDMStudent,
    ddim_step,
    locomotion_layout,
)
from dnk_training.students.common import PairTensors, make_state, make_step_fn

H, OBS, ACT = 3, 3, 2
D = OBS + ACT
K = 10
S = 0.5
LAYOUT = locomotion_layout(OBS, ACT)
MU = torch.linspace(-1, 1, H * D).reshape(H, D)
ABAR = torch.cat([torch.ones(1), Schedule(K).sqrt_ac.pow(2)])
MASK = torch.zeros(H, D, dtype=torch.bool)
MASK[0, :OBS] = True


def exact_x0(x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    a = ABAR[n][:, None, None]
    x0 = MU + a.sqrt() * S**2 / (a * S**2 + 1 - a) * (x - a.sqrt() * MU)
    return torch.where(MASK, x, x0)


TEACHER_STEP = ddim_step(exact_x0, ABAR)


def teacher(prior: torch.Tensor) -> torch.Tensor:
    x = prior
    for n in range(K, 0, -1):
        x = torch.where(MASK, prior, TEACHER_STEP(x, torch.full((x.shape[0],), n)))
    return x


def toy_pairs(n: int, seed: int) -> PairTensors:
    g = torch.Generator().manual_seed(seed)
    window = MU + S * torch.randn(n, H, D, generator=g)
    tau = torch.tensor([0.5, 0.75, 1.0])[torch.randint(0, 3, (n,), generator=g)]
    prior = condition_prior(tau[:, None, None] * torch.randn(n, H, D, generator=g), window, MASK)
    return PairTensors(prior=prior, target=teacher(prior), weight=torch.ones(n), window=window)


def heldout_mse(model, data: PairTensors) -> float:
    with torch.no_grad():
        return float(((model(data.prior) - data.target) ** 2).mean())


def _check(model, steps=300):
    torch.manual_seed(0)
    train, held = toy_pairs(2048, 0), toy_pairs(512, 1)
    before = heldout_mse(model, held)
    cfg = TrainConfig(steps=steps, batch_size=64, lr=2e-3)
    state = make_state(model, cfg, {})
    step = make_step_fn(model, train, cfg, state)
    for i in range(steps):
        logs = step(i)
    after = heldout_mse(model, held)
    assert torch.isfinite(torch.tensor(logs["loss"]))
    assert after < 0.5 * before, (type(model).__name__, before, after)
    out = model(held.prior[:4])
    assert torch.equal(out[:, 0, :OBS], held.prior[:4, 0, :OBS])
    return before, after


SHARED = {"latent_dim": 16, "hidden": 64, "depth": 2}


def test_fdk_learns_toy_teacher():
    _check(FDKStudent(LAYOUT, H, FDKConfig(**SHARED, rank=8)))


def test_kdm_learns_toy_teacher():
    _check(KDMStudent(LAYOUT, H, KDMConfig(**SHARED)))


def test_kdmf_learns_toy_teacher_with_stable_spectrum():
    m = KDMFStudent(LAYOUT, H, KDMFConfig(**SHARED, num_real=2))
    _check(m)
    assert float(m.eigenvalues().abs().max()) < 1.0


def test_consistency_distillation_learns_toy_teacher():
    _check(ConsistencyStudent(LAYOUT, H, ABAR, ConsistencyConfig(**SHARED), mode="cd", teacher_step=TEACHER_STEP))


def test_consistency_training_learns_from_data_only():
    _check(ConsistencyStudent(LAYOUT, H, ABAR, ConsistencyConfig(**SHARED), mode="ct"))


def test_consistency_boundary_is_identity_at_step_zero():
    m = ConsistencyStudent(LAYOUT, H, ABAR, ConsistencyConfig(**SHARED), mode="ct")
    x = torch.randn(4, H, D)
    from dnk_training.students.consistency import step_embedding

    y = m.f(m.net, x, ABAR[torch.zeros(4, dtype=torch.long)], step_embedding(torch.zeros(4), 32))
    assert torch.allclose(y, x)


@pytest.mark.parametrize("make", [
    lambda loss: FDKStudent(LAYOUT, H, FDKConfig(**SHARED, loss=loss)),
    lambda loss: KDMStudent(LAYOUT, H, KDMConfig(**SHARED, loss=loss)),
])
def test_free_entry_losses_ignore_the_fixed_context_and_average_over_the_predicted_entries(make):
    """LossConfig.entries = free: L_rec and L_pred do not see what the student outputs on fixed
    entries (re-imposed), and equal the mean squared error over the free entries alone."""
    from dnk_training.losses import LossConfig

    torch.manual_seed(0)
    model = make(LossConfig(entries="free"))
    data = toy_pairs(8, 0)
    x_rec = data.target + torch.randn_like(data.target)
    x_hat = model.reimpose(data.target + torch.randn_like(data.target), data.prior)
    rec, pred = model.entry_losses(x_rec, x_hat, data.target, "free")
    shifted = torch.where(MASK, x_rec + 100.0, x_rec)  # only fixed entries change
    assert torch.allclose(model.entry_losses(shifted, x_hat, data.target, "free")[0], rec)
    free = ~MASK
    assert torch.allclose(rec, ((x_rec - data.target) ** 2)[:, free].mean(dim=1), rtol=1e-5)
    assert torch.allclose(pred, ((x_hat - data.target) ** 2)[:, free].mean(dim=1), rtol=1e-5)
    rec_all, _ = model.entry_losses(shifted, x_hat, data.target, "all")
    assert (rec_all > 100.0).all()  # "all" counts the fixed entries
    total, logs = model.losses(data.prior, data.target, data.weight, data.window)
    assert torch.isfinite(total) and logs["rec"] > 0
