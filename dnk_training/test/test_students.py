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


def test_kdmf_learns_toy_teacher_and_its_materialized_k_is_stable():
    """Stability of K = P Lambda P^-1 itself (not only of Lambda): spectral radius < 1 after training,
    equal to max |lambda|, and the transition the student trains with is that matrix."""
    m = KDMFStudent(LAYOUT, H, KDMFConfig(**SHARED, num_real=2))
    with torch.no_grad():
        m.P.add_(torch.randn_like(m.P))  # far from orthogonal: a free P_inv would be far from P^-1
    _check(m)
    K = m.operator().detach()
    radius = float(torch.linalg.eigvals(K).abs().max())
    assert radius < 1.0
    assert abs(radius - float(m.eigenvalues().abs().max())) < 1e-4
    z = torch.randn(5, SHARED["latent_dim"])
    assert torch.allclose(m.transition(z), z @ K.T, atol=1e-4)
    prior = toy_pairs(4, 3).prior
    with torch.no_grad():
        assert torch.allclose(m.export_module()(prior), m(prior), atol=1e-5)  # what ONNX gets: K materialized
    _, logs = m.losses(prior, prior, torch.ones(4), prior)
    assert abs(logs["spectral_radius"] - radius) < 1e-4


def test_kdm_trains_both_latents_as_the_reference_does():
    """No stop-gradient: L_lat alone sends gradient into phi_0 (the method's FDK detaches it)."""
    data = toy_pairs(16, 0)
    for stop, expect in ((False, True), (True, False)):
        from dnk_training.losses import LossConfig

        m = KDMStudent(LAYOUT, H, KDMConfig(**SHARED, stop_grad_latent=stop,
                                            loss=LossConfig(l_rec=0, l_pred=0, l_act=0, l_gain=0, l_inv=0)))
        total, _ = m.losses(data.prior, data.target, data.weight, data.window)
        total.backward()
        got = m.phi_0[0].weight.grad
        assert (got is not None and got.abs().sum() > 0) == expect


@pytest.mark.parametrize("make,encoders", [
    (lambda **kw: FDKStudent(LAYOUT, H, FDKConfig(**SHARED, **kw)), ("phi",)),
    (lambda **kw: KDMStudent(LAYOUT, H, KDMConfig(**SHARED, **kw)), ("phi_t", "phi_0")),
    (lambda **kw: KDMFStudent(LAYOUT, H, KDMFConfig(**SHARED, **kw)), ("phi_t", "phi_0")),
])
def test_latent_norm_fixes_the_latent_scale_of_every_koopman_encoder(make, encoders):
    """With latent_norm the latents on both sides of L_lat have zero mean and unit variance per sample,
    whatever the encoders' scale; without it (the default) they do not."""
    torch.manual_seed(0)
    x = toy_pairs(8, 0)
    m = make(latent_norm=True)
    z_pred, z_target = m.latents(x.prior, x.target)
    assert torch.allclose(z_target.mean(-1), torch.zeros(8), atol=1e-5)
    assert torch.allclose(z_target.var(-1, unbiased=False), torch.ones(8), atol=1e-2)  # layer_norm eps 1e-5
    with torch.no_grad():
        for name in encoders:
            getattr(m, name)[-1].weight.mul_(100)
            getattr(m, name)[-1].bias.mul_(100)
    assert torch.allclose(m.latents(x.prior, x.target)[1], z_target, rtol=1e-2, atol=1e-3)  # scale x100 -> same
    assert torch.allclose(m.latents(x.prior, x.target)[0], z_pred, rtol=1e-2, atol=1e-3)
    plain = make()
    assert not torch.allclose(plain.latents(x.prior, x.target)[1].var(-1, unbiased=False), torch.ones(8), atol=1e-2)


@pytest.mark.parametrize("make", [
    lambda: KDMStudent(LAYOUT, H, KDMConfig(**SHARED)),
    lambda: ConsistencyStudent(LAYOUT, H, ABAR, CT_CFG, mode="ct"),
])
def test_resumed_student_training_repeats_the_uninterrupted_run(tmp_path, make):
    """Latent noise, noise levels and the CT curriculum come from the registered generators and
    saved buffers: 20 steps in one go equal the same run resumed from its step-10 checkpoint into a fresh model."""
    from dnk_training.trainer import run_training

    data = toy_pairs(256, 0)

    def train(steps: int, run_dir, resume: bool):
        torch.manual_seed(123 if resume else 0)  # the global RNG must not matter
        model = make()
        cfg = TrainConfig(steps=steps, batch_size=16, lr=1e-3, log_every=5, ckpt_every=10)
        state = make_state(model, cfg, {})
        run_training("s", state, make_step_fn(model, data, cfg, state), cfg, run_dir, resume=resume, progress=False)
        return model

    straight = train(20, tmp_path, False)
    for f in (tmp_path / "checkpoints").glob("ckpt_00000020.*"):
        f.unlink()  # as if the run had been killed after step 10's checkpoint
    resumed = train(20, tmp_path, True)
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name


CD_CFG = ConsistencyConfig(**SHARED, target_decay=0.95, ema_decay=0.9)
CT_CFG = ConsistencyConfig(**SHARED, ema_decay=0.9, curriculum_steps=300)


def test_consistency_distillation_learns_toy_teacher():
    _check(ConsistencyStudent(LAYOUT, H, ABAR, CD_CFG, mode="cd", teacher_step=TEACHER_STEP))


def test_consistency_training_learns_from_data_only():
    m = ConsistencyStudent(LAYOUT, H, ABAR, CT_CFG, mode="ct")
    _check(m)
    assert int(m.step) == 300  # the curriculum position advanced with every step (saved for resume)


@pytest.mark.parametrize("mode", ["cd", "ct"])
def test_consistency_boundary_is_identity_at_the_smallest_level(mode):
    """f(x, sigma_min) = x: c_skip = 1 and c_out = 0 there (CD's grid ends at the clean trajectory, sigma 0)."""
    m = ConsistencyStudent(LAYOUT, H, ABAR, CT_CFG, mode=mode, teacher_step=TEACHER_STEP)
    x = torch.randn(4, H, D)
    sigma = torch.full((4,), 0.0 if mode == "cd" else CT_CFG.sigma_min)
    assert torch.allclose(m.f(m.net, x, sigma), x)
    assert not torch.allclose(m.f(m.net, x, sigma + 1.0), x)


def test_ct_curriculum_and_karras_grid_follow_improved_ct():
    from dnk_training.students.consistency import ct_discretization, karras_grid

    total = 8000  # K' = floor(8000 / (log2(128) + 1)) = 1000 steps per doubling
    assert [ct_discretization(k, total, 10, 1280) for k in (0, 999, 1000, 2500, 7000, 7999)] == \
        [11, 11, 21, 41, 1281, 1281]
    g = karras_grid(11, 0.002, 80.0, 7.0)
    assert g.shape == (11,) and torch.isclose(g[0], torch.tensor(0.002)) and torch.isclose(g[-1], torch.tensor(80.0))
    assert (g[1:] > g[:-1]).all()


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


def test_every_student_gets_fdks_parameter_count_within_one_percent():
    """match_params: each other student's width is solved so the trainable counts agree (the issue
    asks for 10 %); off, the same widths give KDM ~35 % more and the consistency MLP ~50 % fewer."""
    from dnk_training.configs import load_task_config
    from dnk_training.distill_cli import _abar, build_student, student_config_for, trainable_parameters
    from dnk_training.students.config import MODELS, load_distill_config

    task = load_task_config("halfcheetah", "small")
    abar = _abar(task)

    def counts(match: bool) -> dict[str, int]:
        d = load_distill_config("small", {"match_params": match})
        return {m: trainable_parameters(build_student(m, task.layout, task.dataset.horizon,
                                                      student_config_for(m, d, task.layout, task.dataset.horizon, abar),
                                                      abar)) for m in MODELS}

    matched, plain = counts(True), counts(False)
    assert matched["fdk"] == plain["fdk"]
    assert all(abs(n / matched["fdk"] - 1) < 0.01 for n in matched.values()), matched
    assert plain["kdm"] > 1.3 * plain["fdk"] and plain["cd"] < 0.6 * plain["fdk"], plain


@pytest.mark.parametrize("make", [lambda: FDKStudent(LAYOUT, H, FDKConfig(**SHARED)),
                                  lambda: KDMStudent(LAYOUT, H, KDMConfig(**SHARED))])
def test_latent_fit_is_relative_to_the_target_latent_scale(make):
    """Held-out L_lat grows with the square of the latent scale, which no loss fixes; lat_relative does not
    (untrained students: FDK's modal gains start at 1 whatever the latent)."""
    from dnk_training.distill_cli import latent_fit

    torch.manual_seed(0)
    model, held = make(), toy_pairs(256, 1)
    fit = latent_fit(model, held.prior.numpy(), held.target.numpy())
    z0_hat, z0 = model.latents(held.prior, held.target)
    assert fit["lat_mse"] == pytest.approx(float((z0_hat - z0).pow(2).mean()), rel=1e-5) and fit["lat_mse"] > 0
    with torch.no_grad():  # every latent 10x larger: the encoders' last layers scaled (KDM's K is linear)
        for enc in ("phi", "phi_t", "phi_0"):
            if hasattr(model, enc):
                getattr(model, enc)[-1].weight.mul_(10)
                getattr(model, enc)[-1].bias.mul_(10)
    scaled = latent_fit(model, held.prior.numpy(), held.target.numpy())
    assert scaled["target_latent_mean_square"] == pytest.approx(100 * fit["target_latent_mean_square"], rel=1e-4)
    assert scaled["lat_relative"] == pytest.approx(fit["lat_relative"], rel=1e-3)  # FDK's gains start constant
    assert latent_fit(ConsistencyStudent(LAYOUT, H, ABAR, CT_CFG, mode="ct"), held.prior.numpy(),
                      held.target.numpy()) is None


def test_latent_norm_is_on_for_fdk_in_the_config_and_off_for_configs_written_before_it():
    """config/distill.yaml turns it on for FDK only (the studies found it does not help KDM / KDM-F); a checkpoint's
    stored student_config without the field (written before it existed) rebuilds the model it was."""
    from dnk_training.students.config import load_distill_config

    for preset in ("small", "table1", "paper"):
        d = load_distill_config(preset)
        assert d.fdk.latent_norm and not d.kdm.latent_norm and not d.kdmf.latent_norm
    stored = FDKConfig(**SHARED).model_dump(mode="json")
    stored.pop("latent_norm")
    assert FDKConfig.model_validate(stored).latent_norm is False
