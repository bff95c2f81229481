"""The MuJoCo bridge end to end: a tiny exported student + selector through the planner core in
real HalfCheetah-v5, finite returns and latencies, resume, merge, bad input."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dnk_planner.core.manifest import ModelManifest, save_manifest, sha256_file
from dnk_training.eval.bridge import EvalConfig, PlannerPolicy, evaluate, make_env
from dnk_training.eval.cli import main
from dnk_training.eval.results import load_results, merge_runs

H, OBS, ACT = 4, 17, 6
D = OBS + ACT
OPSET = 17


def _save(graph: onnx.GraphProto, path, role: str, inputs, outputs) -> str:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    manifest = ModelManifest(
        format_version=1, model_id=f"tiny-{role}", role=role, task="locomotion", horizon=H,
        columns=[{"name": "obs", "dim": OBS}, {"name": "act", "dim": ACT}],
        fixed=[{"column": "obs", "rows": "first", "source": "obs"}],
        action={"column": "act", "row": 0},
        normalizer={"mean": [0.0] * D, "std": [1.0] * D},
        inputs=inputs, outputs=outputs, opset=OPSET, onnx_sha256=sha256_file(path),
        provenance={"method": "test"})
    save_manifest(manifest, path)
    return str(path)


def tiny_student(path, seed: int = 0) -> str:
    """trajectory = tanh(prior @ W): a real ONNX graph with a dynamic batch axis."""
    w = np.random.default_rng(seed).normal(0, 0.3, (D, D)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["prior", "W"], ["h"]), helper.make_node("Tanh", ["h"], ["trajectory"])],
        "tiny_student",
        [helper.make_tensor_value_info("prior", TensorProto.FLOAT, ["N", H, D])],
        [helper.make_tensor_value_info("trajectory", TensorProto.FLOAT, ["N", H, D])],
        [numpy_helper.from_array(w, "W")])
    spec = [{"name": "prior", "shape": [None, H, D]}], [{"name": "trajectory", "shape": [None, H, D]}]
    return _save(graph, path, "student", *spec)


def tiny_critic(path) -> str:
    """q = act . w (prefers a fixed action direction), shape (N,)."""
    w = np.linspace(-1, 1, ACT, dtype=np.float32).reshape(ACT, 1)
    v = np.zeros((OBS, 1), np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["act", "Wa"], ["qa"]), helper.make_node("MatMul", ["obs", "Wo"], ["qo"]),
         helper.make_node("Add", ["qa", "qo"], ["q2"]), helper.make_node("Reshape", ["q2", "flat"], ["q"])],
        "tiny_critic",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["N", OBS]),
         helper.make_tensor_value_info("act", TensorProto.FLOAT, ["N", ACT])],
        [helper.make_tensor_value_info("q", TensorProto.FLOAT, ["N"])],
        [numpy_helper.from_array(w, "Wa"), numpy_helper.from_array(v, "Wo"),
         numpy_helper.from_array(np.array([-1], np.int64), "flat")])
    return _save(graph, path, "critic",
                 [{"name": "obs", "shape": [None, OBS]}, {"name": "act", "shape": [None, ACT]}],
                 [{"name": "q", "shape": [None]}])


def tiny_classifier(path) -> str:
    """value = mean over the trajectory tensor, shape (N,)."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["trajectory"], ["value"], axes=[1, 2], keepdims=0)],
        "tiny_classifier",
        [helper.make_tensor_value_info("trajectory", TensorProto.FLOAT, ["N", H, D])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N"])])
    return _save(graph, path, "classifier", [{"name": "trajectory", "shape": [None, H, D]}],
                 [{"name": "value", "shape": [None]}])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {"student": tiny_student(d / "student.onnx"), "critic": tiny_critic(d / "critic.onnx"),
            "classifier": tiny_classifier(d / "classifier.onnx")}


CFG = EvalConfig(env_id="HalfCheetah-v5", seeds=[0, 1], episodes=2, max_steps=20, candidate_states=2, progress=False)


def test_student_rollout_through_planner(models):
    policy = PlannerPolicy(models["student"], "critic", models["critic"], num_candidates=16)
    run = evaluate(policy, "tiny", CFG)
    assert [s.seed for s in run.seeds] == [0, 1]
    for s in run.seeds:
        assert len(s.episodes) == 2 and len(s.latency_ms) == 2 * 20
        assert all(e.length == 20 and np.isfinite(e.episode_return) for e in s.episodes)
        assert all(np.isfinite(x) and x > 0 for x in s.latency_ms)
        assert {"inference_ms", "total_ms"} <= set(s.timing_mean_ms)
    # Different seeds -> different env seeds and priors -> different returns.
    r = [e.episode_return for s in run.seeds for e in s.episodes]
    assert len(set(r)) == 4
    cand = np.asarray(run.candidates.trajectories)
    assert cand.shape == (2, 16, H, D)
    # The planner fixed row-0 obs of every candidate to the state it was asked about.
    assert np.allclose(cand[:, :, 0, :OBS], np.asarray(run.candidates.states)[:, None, :], atol=1e-4)


def test_critic_selector_picks_the_action_it_prefers(models):
    """Closed loop through the core: the critic's preferred direction must win among candidates."""
    env = make_env("HalfCheetah-v5", 5)
    obs, _ = env.reset(seed=0)
    critic = PlannerPolicy(models["student"], "critic", models["critic"], num_candidates=32)
    critic.reset(0)
    step = critic.decide(np.asarray(obs))
    w = np.linspace(-1, 1, ACT)
    q = step.candidates[:, 0, OBS:] @ w
    assert np.allclose(step.action, step.candidates[int(np.argmax(q)), 0, OBS:], atol=1e-5)
    clf = PlannerPolicy(models["student"], "classifier", models["classifier"], num_candidates=32)
    clf.reset(0)
    assert np.all(np.isfinite(clf.decide(np.asarray(obs)).action))


def test_cli_resume_and_merge(models, tmp_path):
    out = tmp_path / "r.json"
    args = ["d4rl", "--method", "tiny", "--student", models["student"], "--selector", "critic",
            "--selector-model", models["critic"], "--episodes", "1", "--max-steps", "10",
            "--num-candidates", "8", "--candidate-states", "1", "--no-progress", "--out", str(out)]
    assert main(args + ["--seeds", "0"]) == 0
    first = load_results(out).runs[0]
    assert main(args + ["--seeds", "0", "1"]) == 2  # an existing run is not silently continued
    assert main(args + ["--seeds", "0", "1", "--resume"]) == 0  # resumes: seed 0 kept as is, seed 1 added
    run = load_results(out).runs[0]
    assert [s.seed for s in run.seeds] == [0, 1]
    assert run.seeds[0] == first.seeds[0]
    with pytest.raises(ValueError, match="seed"):
        merge_runs([run, run])


def test_bad_inputs_give_clear_errors(models, tmp_path, capsys):
    with pytest.raises(ValueError, match="role"):
        PlannerPolicy(models["student"], "critic", models["classifier"])
    out = str(tmp_path / "x.json")
    base = ["d4rl", "--method", "m", "--student", models["student"], "--out", out]
    assert main(base) == 2 and "--selector-model" in capsys.readouterr().err
    assert main(base + ["--selector-model", models["critic"], "--env", "Ant-v5"]) == 2
    assert "HalfCheetah-v5" in capsys.readouterr().err


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """An untrained teacher + classifier with the real HalfCheetah architecture (B's classes)."""
    torch = pytest.importorskip("torch")
    from dnk_training.classifier import ReturnClassifier
    from dnk_training.configs import load_task_config
    from dnk_training.normalizer import Normalizer
    from dnk_training.teacher import Teacher

    torch.manual_seed(0)
    cfg = load_task_config("halfcheetah", "small")
    norm = Normalizer(np.zeros(D), np.ones(D))
    d = tmp_path_factory.mktemp("teacher")
    Teacher(cfg, norm).save(d / "teacher", 0)
    ReturnClassifier(cfg, norm).save(d / "classifier", 0)
    return str(d)


def test_teacher_native_protocol_through_bridge(teacher_dir):
    from dnk_training.eval.bridge import TeacherPolicy

    policy = TeacherPolicy(teacher_dir, num_candidates=8)
    cfg = EvalConfig(env_id="HalfCheetah-v5", seeds=[3], episodes=1, max_steps=3, candidate_states=1, progress=False)
    run = evaluate(policy, "Teacher", cfg)
    (s,) = run.seeds
    assert s.episodes[0].length == 3 and np.isfinite(s.episodes[0].episode_return)
    assert len(s.latency_ms) == 3 and {"sampling_ms", "total_ms"} <= set(s.timing_mean_ms)
    assert run.setting["diffusion_steps"] == 20 and run.setting["num_candidates"] == 8
    # The executed action is the first action of the classifier's best candidate.
    import torch
    obs = np.asarray(run.candidates.states[0])
    policy.reset(0)
    step = policy.decide(obs)
    with torch.no_grad():
        x_n = policy.teacher.normalizer.normalize(torch.as_tensor(step.candidates, dtype=torch.float32))
        best = int(policy.classifier(x_n, 0).argmax())
    assert np.allclose(step.action, step.candidates[best, 0, OBS:], atol=1e-5)
    assert np.allclose(step.candidates[:, 0, :OBS], obs, atol=1e-4)  # row-0 obs fixed by inpainting


def test_teacher_missing_artifacts(tmp_path):
    from dnk_training.eval.bridge import TeacherPolicy

    with pytest.raises(ValueError, match="train-teacher"):
        TeacherPolicy(str(tmp_path))


def test_candidate_states_from_dataset_and_env(tmp_path):
    import h5py

    from dnk_training.eval.bridge import candidate_states

    n = 40
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, OBS)).astype(np.float32)
    with h5py.File(tmp_path / "d.hdf5", "w") as f:
        f["observations"], f["next_observations"] = obs, obs
        f["actions"] = rng.uniform(-1, 1, (n, ACT)).astype(np.float32)
        f["rewards"] = np.zeros(n, np.float32)
        f["terminals"] = np.zeros(n, bool)
        f["timeouts"] = np.arange(n) % 20 == 19
    s = candidate_states("HalfCheetah-v5", 3, str(tmp_path / "d.hdf5"))
    assert np.allclose(s, obs[[0, 19, 39]])
    a, b = candidate_states("HalfCheetah-v5", 2), candidate_states("HalfCheetah-v5", 2)
    assert a.shape == (2, OBS) and np.array_equal(a, b) and not np.allclose(a[0], a[1])
