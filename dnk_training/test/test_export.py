"""ONNX export: parity per model kind, refusal above tolerance, runtime refuses a wrong manifest."""
import json

import numpy as np
import pytest
import torch

from dnk_planner.core.manifest import ModelContractError, load_model
from dnk_training.classifier import ReturnClassifier
from dnk_training.configs import load_task_config
from dnk_training.diffusion import Schedule
from dnk_training.export import ExportParityError, export_classifier, export_critic, export_student, layout_priors
from dnk_training.iql import IQLCritic
from dnk_training.normalizer import Normalizer
from dnk_training.students import (
    ConsistencyStudent,
    FDKConfig,
    FDKStudent,
    KDMConfig,
    KDMFConfig,
    KDMFStudent,
    KDMStudent,
)
from dnk_training.students.consistency import ConsistencyConfig

CFG = load_task_config(
    "halfcheetah", "small", {"teacher.unet.model_dim": 8, "classifier.unet.model_dim": 8, "iql.hidden": [32, 32]}
)
H, LAYOUT = CFG.dataset.horizon, CFG.layout
D = LAYOUT.dim
NORM = Normalizer(np.linspace(-1, 1, D), np.linspace(0.5, 2, D))
SHARED = {"latent_dim": 8, "hidden": 32, "depth": 1}
ABAR = torch.cat([torch.ones(1), Schedule(20).sqrt_ac.pow(2)])


def _students():
    return {
        "fdk": FDKStudent(LAYOUT, H, FDKConfig(**SHARED, rank=4)),
        "fdk-latent-norm": FDKStudent(LAYOUT, H, FDKConfig(**SHARED, latent_norm=True)),
        "kdm": KDMStudent(LAYOUT, H, KDMConfig(**SHARED)),
        "kdmf": KDMFStudent(LAYOUT, H, KDMFConfig(**SHARED, num_real=2)),
        "kdmf-latent-norm": KDMFStudent(LAYOUT, H, KDMFConfig(**SHARED, num_real=2, latent_norm=True)),
        "cd": ConsistencyStudent(LAYOUT, H, ABAR, ConsistencyConfig(**SHARED), mode="cd"),
        "ct": ConsistencyStudent(LAYOUT, H, ABAR, ConsistencyConfig(**SHARED), mode="ct"),
    }


@pytest.mark.parametrize("kind", ["fdk", "fdk-latent-norm", "kdm", "kdmf", "kdmf-latent-norm", "cd", "ct"])
def test_student_export_parity_and_runtime_load(tmp_path, kind):
    torch.manual_seed(0)
    model = _students()[kind]
    manifest, err = export_student(model, tmp_path / f"{kind}.onnx", f"toy-{kind}", LAYOUT, H, NORM, "locomotion",
                                   {"method": kind})
    assert err < 1e-4
    assert manifest.opset >= 17 and manifest.role == "student"
    loaded = load_model(tmp_path / f"{kind}.json", provider="cpu")
    prior = np.random.default_rng(0).standard_normal((64, H, D)).astype(np.float32)
    out = loaded.run(prior=prior)["trajectory"]
    with torch.no_grad():
        ref = model(torch.as_tensor(prior)).numpy()
    assert out.shape == (64, H, D)
    assert np.abs(out - ref).max() < 1e-4
    assert np.array_equal(out[:, 0, :17], prior[:, 0, :17])  # fixed obs untouched


def test_selector_exports(tmp_path):
    torch.manual_seed(0)
    clf = ReturnClassifier(CFG, NORM, value_mean=3.0, value_std=2.0).eval()
    m, err = export_classifier(clf, tmp_path / "classifier.onnx", "toy-clf", LAYOUT, H, NORM, "locomotion", {})
    assert err < 1e-4 and m.outputs[0].name == "value"
    x = np.random.default_rng(1).standard_normal((5, H, D)).astype(np.float32)
    v = load_model(tmp_path / "classifier.onnx", provider="cpu").run(trajectory=x)["value"]
    with torch.no_grad():
        assert np.allclose(v, clf(torch.as_tensor(x), 0).numpy(), atol=1e-4)
    critic = IQLCritic(CFG, NORM.slice(0, 17), 6).eval()
    m, err = export_critic(critic, tmp_path / "critic.onnx", "toy-critic", LAYOUT, H, NORM, "locomotion", {})
    assert err < 1e-4 and [t.name for t in m.inputs] == ["obs", "act"]
    obs = np.random.default_rng(2).standard_normal((7, 17)).astype(np.float32) * 3
    act = np.random.default_rng(3).uniform(-1, 1, (7, 6)).astype(np.float32)
    q = load_model(tmp_path / "critic.onnx", provider="cpu").run(obs=obs, act=act)["q"]
    with torch.no_grad():
        assert np.allclose(q, critic(torch.as_tensor(obs), torch.as_tensor(act)).numpy(), atol=1e-4)


def test_selector_parity_is_relative_to_return_scale(tmp_path):
    """Returns ~1e3 leave float32 ~1e-4 apart: the selector gate scales with the output, students' does not."""
    torch.manual_seed(0)
    clf = ReturnClassifier(CFG, NORM, value_mean=800.0, value_std=400.0).eval()
    _, err = export_classifier(clf, tmp_path / "classifier.onnx", "big", LAYOUT, H, NORM, "locomotion", {})
    x = np.random.default_rng(4).standard_normal((9, H, D)).astype(np.float32)
    v = load_model(tmp_path / "classifier.onnx", provider="cpu").run(trajectory=x)["value"]
    with torch.no_grad():
        ref = clf(torch.as_tensor(x), 0).numpy()
    assert np.abs(v - ref).max() / np.abs(ref).max() < 1e-4
    with pytest.raises(ExportParityError, match="max abs error / max"):
        export_classifier(clf, tmp_path / "c2.onnx", "big", LAYOUT, H, NORM, "locomotion", {}, tol=err / 1e4)


def test_parity_failure_writes_nothing(tmp_path):
    with pytest.raises(ExportParityError, match="not written"):
        export_student(_students()["fdk"], tmp_path / "fdk.onnx", "toy", LAYOUT, H, NORM, "locomotion", {}, tol=0.0)
    assert list(tmp_path.iterdir()) == []


def test_runtime_refuses_a_wrong_manifest(tmp_path):
    export_student(_students()["kdm"], tmp_path / "kdm.onnx", "toy", LAYOUT, H, NORM, "locomotion", {})
    path = tmp_path / "kdm.json"
    good = json.loads(path.read_text())
    bad = dict(good, horizon=H + 1)  # manifest says H+1 rows but the graph takes H
    path.write_text(json.dumps(bad))
    with pytest.raises(ModelContractError, match="shape"):
        load_model(path, provider="cpu")
    path.write_text(json.dumps(dict(good, onnx_sha256="0" * 64)))
    with pytest.raises(ModelContractError, match="onnx_sha256"):
        load_model(path, provider="cpu")


def _toy_artifacts(tmp_path):
    """Tiny untrained teacher/classifier/critic on a toy D4RL-layout file, saved like dnk-train does."""
    import h5py

    from dnk_training.datasets import fit_normalizer, load_dataset
    from dnk_training.teacher import Teacher

    rng = np.random.default_rng(0)
    n, ep = 300, 30
    obs = rng.standard_normal((n, 17)).astype(np.float32)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[ep - 1 :: ep] = True
    with h5py.File(tmp_path / "toy.hdf5", "w") as f:
        f["observations"], f["next_observations"] = obs, np.roll(obs, -1, 0)
        f["actions"] = rng.uniform(-1, 1, (n, 6)).astype(np.float32)
        f["rewards"] = rng.standard_normal(n).astype(np.float32)
        f["terminals"], f["timeouts"] = np.zeros(n, dtype=bool), timeouts
    cfg = load_task_config("halfcheetah", "small", {
        "dataset.path": str(tmp_path / "toy.hdf5"), "teacher.unet.model_dim": 8, "classifier.unet.model_dim": 8,
        "iql.hidden": [16, 16]})
    norm = fit_normalizer(load_dataset(cfg.dataset.path))
    art = tmp_path / "art"
    torch.manual_seed(0)
    Teacher(cfg, norm).save(art / "teacher", 0)
    ReturnClassifier(cfg, norm).save(art / "classifier", 0)
    IQLCritic(cfg, norm.slice(0, 17), 6).save(art / "iql", 0)
    return art


def test_cli_pipeline_pairs_train_export_report(tmp_path):
    """gen-pairs -> train-student (all five) -> export (+ selectors) -> distill-report through dnk-train."""
    from dnk_training.cli import main

    art = _toy_artifacts(tmp_path)
    a = ["--artifacts", str(art)]
    assert main(["gen-pairs", *a, "--split", "train", "--num-pairs", "300"]) == 0
    assert main(["gen-pairs", *a, "--split", "heldout", "--num-pairs", "64"]) == 0
    for m in ("fdk", "kdm", "kdmf", "cd", "ct"):
        assert main(["train-student", *a, "--model", m, "--steps", "6"]) == 0
    assert main(["train-student", *a, "--model", "fdk", "--steps", "8", "--resume"]) == 0
    assert main(["export", *a, "--selectors"]) == 0
    for m in ("fdk", "kdm", "kdmf", "cd", "ct"):
        assert load_model(art / "students" / f"{m}.json", provider="cpu").manifest.role == "student"
    assert load_model(art / "selectors" / "critic.json", provider="cpu").manifest.role == "critic"
    assert load_model(art / "selectors" / "classifier.json", provider="cpu").manifest.role == "classifier"
    out = tmp_path / "report"
    assert main(["distill-report", *a, "--out", str(out), "--latency-runs", "2", "--teacher-runs", "1",
                 "--sweep-contexts", "3", "--sweep-priors", "4"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["students"]) == {"fdk", "kdm", "kdmf", "cd", "ct"}
    assert rep["students"]["fdk"]["train_steps"] == 8
    assert all(np.isfinite(v["traj_mse"]) for v in rep["students"].values())
    assert rep["prior_sweep"]["teacher_between_prior_var"] > 0  # DDIM targets move with the prior
    assert all(np.isfinite(v["prior_sweep"]["prior_r2"]) for v in rep["students"].values())
    assert all(rep["students"][m]["latent"]["lat_relative"] >= 0 for m in ("fdk", "kdm", "kdmf"))
    assert rep["students"]["cd"]["latent"] is None and rep["students"]["ct"]["latent"] is None
    assert (out / "distill.png").stat().st_size > 0


def test_student_config_travels_with_the_checkpoint(tmp_path, monkeypatch):
    """--set reaches the student (rank, loss weights, sizes); load_student rebuilds from the checkpoint,
    not from today's YAML, so a later change of the defaults cannot change a trained student."""
    from dnk_training import distill_cli
    from dnk_training.cli import main
    from dnk_training.students.config import load_distill_config

    art = _toy_artifacts(tmp_path)
    a = ["--artifacts", str(art)]
    assert main(["gen-pairs", *a, "--split", "train", "--num-pairs", "64"]) == 0
    assert main(["train-student", *a, "--model", "fdk", "--steps", "2", "--set", "student.latent_dim=8",
                 "--set", "fdk.rank=3", "--set", "fdk.loss.l_lat=0.25"]) == 0
    real = load_distill_config

    def other_defaults(preset="small", overrides=None):  # as if the YAML defaults changed after training
        return real(preset, {"student.latent_dim": 16, "fdk.rank": 16, "fdk.loss.l_lat": 1.0, **(overrides or {})})

    monkeypatch.setattr(distill_cli, "load_distill_config", other_defaults)
    model, meta = distill_cli.load_student(art / "runs" / "fdk")
    assert (model.cfg.latent_dim, model.cfg.rank, model.cfg.loss.l_lat) == (8, 3, 0.25)
    assert meta["student_config"]["rank"] == 3


def test_distill_config_sizes_are_shared_and_keys_checked():
    from pydantic import ValidationError

    from dnk_training.students.config import MODELS, load_distill_config

    cfg = load_distill_config("small", {"student.hidden": 64})
    assert {cfg.student_config(m).hidden for m in MODELS} == {64}
    with pytest.raises(ValidationError, match="student.latent_dim"):
        load_distill_config("small", {"kdm.latent_dim": 32})
    with pytest.raises(ValueError, match="'l_typo' is not a field of fdk.loss; valid: entries, l_act, l_gain"):
        load_distill_config("small", {"fdk.loss.l_typo": 1.0})
    with pytest.raises(ValueError, match="'fdk.rank' is a value, not a section"):
        load_distill_config("small", {"fdk.rank.x": 1})
    with pytest.raises(ValueError, match="choose one of"):
        load_distill_config("huge")


def test_export_is_all_or_nothing(tmp_path, monkeypatch, capsys):
    """A missing checkpoint or a failed parity check leaves no half-written export behind."""
    from dnk_training import export as export_mod
    from dnk_training.cli import main

    art = _toy_artifacts(tmp_path)
    a = ["--artifacts", str(art)]
    assert main(["gen-pairs", *a, "--split", "train", "--num-pairs", "64"]) == 0
    assert main(["gen-pairs", *a, "--split", "train", "--num-pairs", "64"]) == 2  # no silent re-use
    assert "--resume" in capsys.readouterr().err
    for m in ("fdk", "kdm"):
        assert main(["train-student", *a, "--model", m, "--steps", "2", "--no-progress"]) == 0
    assert main(["export", *a, "--models", "fdk", "kdm", "kdmf", "--selectors"]) == 2  # kdmf never trained
    assert "kdmf" in capsys.readouterr().err
    assert not (art / "students").exists() and not (art / "selectors").exists()

    real, calls = export_mod.export_student, []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise export_mod.ExportParityError("kdm.onnx: parity failed (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(export_mod, "export_student", fail_second)
    assert main(["export", *a, "--models", "fdk", "kdm"]) == 2
    assert not (art / "students").exists() and not (art / ".export-staging").exists()
    monkeypatch.setattr(export_mod, "export_student", real)
    assert main(["export", *a, "--models", "fdk", "kdm"]) == 0
    assert sorted(p.name for p in (art / "students").iterdir()) == [
        f"{m}{suffix}" for m in ("fdk", "kdm") for suffix in (".json", ".onnx", ".parity.npz")]


def test_prior_sensitivity_tells_a_prior_following_student_from_a_mean_regressor():
    """prior_r2 is 1 for a student that moves with the prior as the teacher does, 0 for one that
    returns the context mean (same trajectory MSE budget, one path for the selector)."""
    from dnk_training.distill_cli import prior_sensitivity

    rng = np.random.default_rng(0)
    target = rng.normal(size=(5, 8, 4, 3)) + rng.normal(size=(5, 1, 4, 3)) * 3.0  # context part + prior part
    free = np.ones((4, 3), dtype=bool)
    free[0] = False
    exact = prior_sensitivity(target, target, free)
    assert exact["prior_r2"] == 1.0 and exact["between_prior_var"] > 0.5
    mean = np.broadcast_to(target.mean(axis=1, keepdims=True), target.shape)
    collapsed = prior_sensitivity(mean, target, free)
    assert collapsed["prior_r2"] == 0.0 and collapsed["between_prior_var"] == 0.0
    half = prior_sensitivity(mean + 0.5 * (target - mean), target, free)
    assert abs(half["prior_r2"] - 0.75) < 1e-9


@pytest.mark.parametrize("kind", ["fdk", "kdm", "kdmf"])
def test_exported_student_reads_context_once_and_computes_only_the_planned_columns(tmp_path, kind):
    """With a context column fixed at every row (the arm's goal and obstacles), the encoder reads it once
    and the decoder computes only the other columns, and the exported model still computes the
    student's function on priors that hold the context at every row."""
    import onnx
    from onnx import numpy_helper

    from dnk_training.configs import LayoutConfig

    layout = LayoutConfig.model_validate({
        "columns": [{"name": "obs", "dim": 3}, {"name": "goal", "dim": 4}, {"name": "act", "dim": 2}],
        "fixed": [{"column": "obs", "rows": "first", "source": "obs"}, {"column": "goal", "rows": "all", "source": "goal"}],
        "action": {"column": "act", "row": 0}})
    torch.manual_seed(0)
    model = {"fdk": FDKStudent(layout, H, FDKConfig(**SHARED)), "kdm": KDMStudent(layout, H, KDMConfig(**SHARED)),
             "kdmf": KDMFStudent(layout, H, KDMFConfig(**SHARED, num_real=2))}[kind]
    norm = Normalizer(np.zeros(9), np.ones(9))
    export_student(model, tmp_path / f"{kind}.onnx", "toy", layout, H, norm, "locomotion", {})
    shapes = [numpy_helper.to_array(t).shape for t in onnx.load(tmp_path / f"{kind}.onnx").graph.initializer]
    assert (H * 5, SHARED["hidden"]) in shapes                  # decoder: obs + act, 5 of 9 columns at every row
    assert (SHARED["hidden"], H * 5) in shapes                  # encoder: those, and the goal once
    assert {(SHARED["hidden"], 4), (4, SHARED["hidden"])} & set(shapes)
    assert not any(H * 9 in s for s in shapes)
    prior = layout_priors(model.fixed, torch.randn(16, H, 9))  # the goal: one value at every row
    with torch.no_grad():
        ref = model(prior).numpy()
    got = load_model(tmp_path / f"{kind}.json", provider="cpu").run(prior=prior.numpy())["trajectory"]
    assert np.abs(got - ref).max() < 1e-5
