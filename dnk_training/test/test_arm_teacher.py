"""Arm windows in the planner's joint-space layout, and the arm teacher trained on them end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dnk_planner.core import Context, Planner
from dnk_planner.core.manifest import sha256_file

from dnk_planner.core.obstacle_encoding import NUM_FEATURES, encode_obstacles
from dnk_training.arm.config import load_demo_config
from dnk_training.arm.demos import generate_demos, load_demos
from dnk_training.arm.windows import arm_layout, arm_windows, split_scenes, split_windows
from dnk_training.cli import main as dnk_train
from dnk_training.configs import load_task_config
from dnk_training.pairs import PairsConfig, generate_pairs, load_pairs, within_prior_spread
from dnk_training.teacher import Teacher

SLOTS = 5
H = 32


@pytest.fixture(scope="module")
def demos_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("arm") / "arm_demos"
    generate_demos(load_demo_config("smoke", {"scenes": 4, "shard_size": 2}), out, workers=1, progress=False)
    return out


def test_windows_follow_the_planner_layout(demos_path) -> None:
    """Joints and the goal configuration as offsets from the measured joints, which travel absolute in
    q_measured; the goal and obstacles as the runtime sees them."""
    demos = load_demos(demos_path)
    layout = arm_layout(SLOTS)
    assert layout.dim == 24 + SLOTS * NUM_FEATURES and layout.action.row == 1
    w = arm_windows(demos, H, SLOTS, [0])
    q = demos.episode(0)
    assert w.shape == (len(q), H, layout.dim)
    t = min(3, len(q) - 1)
    path = np.concatenate([q, np.repeat(q[-1:], H, axis=0)])[t:t + H]
    np.testing.assert_allclose(w[t, :, :7], path - q[t], atol=1e-6)
    np.testing.assert_array_equal(w[:, 0, :7], 0.0)                               # row 0: the measured state
    np.testing.assert_allclose(w[t, 1, :7], q[t + 1] - q[t], atol=1e-6)           # row 1 = the executed step
    np.testing.assert_allclose(w[t, :, 7:14], np.broadcast_to(q[t], (H, 7)), atol=1e-6)
    np.testing.assert_allclose(w[t, :, 14:17], np.broadcast_to(demos.goal[0], (H, 3)), atol=1e-6)
    np.testing.assert_allclose(w[t, :, 17:24], np.broadcast_to(demos.goal_q[0] - q[t], (H, 7)), atol=1e-6)
    enc = encode_obstacles(demos.obstacle_set(0), q[t], SLOTS)                   # the runtime's own function
    np.testing.assert_array_equal(w[t, 5, 24:], enc)
    train, held = split_scenes(demos, 0.25)
    assert list(train) == [0, 1, 2] and list(held) == [3]


def test_window_stride_keeps_every_nth_window_and_only_for_arm_demos(demos_path) -> None:
    cfg = load_task_config("arm", "smoke", {"dataset.path": str(demos_path)})
    full, _ = split_windows(cfg)
    strided, _ = split_windows(cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"window_stride": 3})}))
    demos = load_demos(demos_path)
    train, _ = split_scenes(demos, cfg.heldout_frac)
    starts = np.concatenate([np.arange(0, len(demos.episode(int(e))), 3) + sum(len(demos.episode(int(k))) for k in
                             train[:i]) for i, e in enumerate(train)])
    np.testing.assert_array_equal(strided, full[starts])
    with pytest.raises(ValueError, match="window_stride"):
        load_task_config("halfcheetah", "small", {"dataset.window_stride": 2})


@pytest.fixture(scope="module")
def arm_artifacts(demos_path, tmp_path_factory) -> Path:
    art = tmp_path_factory.mktemp("artifacts")
    assert dnk_train(["train-teacher", "--task", "arm", "--preset", "smoke", "--dataset", str(demos_path),
                      "--artifacts", str(art), "--no-progress"]) == 0
    return art


@pytest.fixture(scope="module")
def arm_teacher(arm_artifacts) -> Teacher:
    return Teacher.load(arm_artifacts / "teacher.json")


def test_arm_teacher_trains_and_samples_with_the_context_fixed(demos_path, arm_teacher) -> None:
    teacher = arm_teacher
    cfg = load_task_config("arm", "smoke")
    assert teacher.steps == 30 and teacher.horizon == H and teacher.dim == cfg.layout.dim
    windows = arm_windows(load_demos(demos_path), H, SLOTS, [0])[:8]
    x = torch.as_tensor(teacher.normalizer.normalize(windows))
    cond = teacher.conditioning.cond_from(x)
    g = torch.Generator().manual_seed(0)
    prior = teacher.make_prior(cond, temperature=0.5, generator=g)
    out = teacher.sample(prior, cond=None, guidance_weight=0.0, generator=g)
    assert out.shape == x.shape and torch.isfinite(out).all()
    mask = teacher.conditioning.mask
    torch.testing.assert_close(out[:, mask], x[:, mask])          # q0, q_measured, goal, goal_q, obstacles


def test_ddim_pairs_have_one_target_per_prior_and_are_seeded(demos_path, arm_teacher, tmp_path) -> None:
    """Within-prior spread (same prior, 4 generator seeds): 0 for DDIM, > 0 for DDPM; a pair chunk
    is reproduced exactly from its seed."""
    teacher = arm_teacher
    windows = teacher.normalizer.normalize(arm_windows(load_demos(demos_path), H, SLOTS, [0, 1]))
    x = torch.as_tensor(windows[:16])
    prior = teacher.make_prior(teacher.conditioning.cond_from(x), 0.5, torch.Generator().manual_seed(1))
    free = ~teacher.conditioning.mask

    def sampler(kind):
        return lambda p, g: teacher.sample(p, generator=g, sampler=kind)

    assert within_prior_spread(sampler("ddim"), prior, free, range(4)) == 0.0
    assert within_prior_spread(sampler("ddpm"), prior, free, range(4)) > 1e-8
    mask = teacher.conditioning.mask.numpy()
    cfg = PairsConfig(num_pairs=24, chunk_size=12, batch_size=12, seed=5, sampler="ddim")
    for run in ("a", "b"):
        generate_pairs(tmp_path / run, windows, mask, sampler("ddim"), lambda t: t[:, 0, 0], cfg, progress=False)
    a, b = load_pairs(tmp_path / "a"), load_pairs(tmp_path / "b")
    np.testing.assert_array_equal(a["prior"], b["prior"])
    np.testing.assert_array_equal(a["target"], b["target"])


def test_student_and_teacher_export_run_through_the_same_planner(demos_path, arm_artifacts, arm_teacher) -> None:
    """gen-pairs -> train-student -> export --teacher-model: both ONNX files load in the planner core,
    the teacher's graph is its DDIM sampler (same targets as torch), and the manifests name the
    demos', teacher's and configs' hashes."""
    art = str(arm_artifacts)
    common = ["--artifacts", art, "--preset", "smoke", "--no-progress"]
    assert dnk_train(["gen-pairs", *common, "--num-pairs", "64"]) == 0
    assert dnk_train(["train-student", "--model", "fdk", *common, "--steps", "4"]) == 0
    assert dnk_train(["export", "--models", "fdk", "--teacher-model", *common]) == 0
    students = arm_artifacts / "students"
    manifests = {n: json.loads((students / f"{n}.json").read_text()) for n in ("fdk", "teacher")}
    assert manifests["fdk"]["role"] == "student" and manifests["teacher"]["role"] == "teacher"
    for m in manifests.values():
        assert m["row_period_s"] == 0.05 and m["prior_temperature"] == 1.5  # arm.yaml: the planner runs both at it
        assert m["provenance"]["dataset_sha256"] == sha256_file(demos_path / "index.json")
        assert m["provenance"]["teacher_sha256"] == sha256_file(arm_artifacts / "teacher.safetensors")
    assert "ddim" in manifests["teacher"]["provenance"]["method"]

    teacher = arm_teacher
    windows = arm_windows(load_demos(demos_path), H, SLOTS, [0])[:4]
    prior = teacher.make_prior(teacher.conditioning.cond_from(torch.as_tensor(teacher.normalizer.normalize(windows))),
                               0.5, torch.Generator().manual_seed(3))
    planners = {n: Planner.from_files(students / f"{n}.onnx") for n in ("fdk", "teacher")}
    assert manifests["teacher"]["denoising_steps"] == teacher.steps == 30
    got = planners["teacher"].generate(prior.numpy())        # the core's K calls of the exported step
    np.testing.assert_allclose(got, teacher.sample(prior, sampler="ddim").numpy(), atol=1e-4)
    w, demo_q = windows[0], load_demos(demos_path).episode(0)
    q0 = w[0, 7:14]                                                   # absolute in q_measured
    np.testing.assert_allclose(q0, demo_q[0], atol=1e-6)
    values = {"q": q0, "goal": w[0, 14:17], "goal_q": w[0, 17:24] + q0, "obstacles": w[0, 24:]}
    for name, planner in planners.items():
        d = planner.plan(Context(values=values, obstacles=load_demos(demos_path).obstacle_set(0)))
        assert d.candidates.shape == (64, H, w.shape[1]) and np.isfinite(d.scores[d.scores > -np.inf]).all(), name
        # the planner adds the measured joints back: candidates are absolute, row 0 is the measured state
        np.testing.assert_allclose(d.candidates[:, 0, :7], np.broadcast_to(q0, (64, 7)), atol=1e-6)
        np.testing.assert_allclose(d.candidates[:, :, 17:24], np.broadcast_to(values["goal_q"], (64, H, 7)), atol=1e-6)
        assert np.abs(d.candidates[:, 1:, :7] - q0).max() < 1.0, name      # near the arm, not near 0 rad
