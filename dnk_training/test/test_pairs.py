"""Teacher-target pairs: conditioned priors, temperatures, seeds, resumable chunks, quality weights."""
import json

import numpy as np
import pytest
import torch

from dnk_training.pairs import PairsConfig, condition_prior, generate_pairs, load_pairs, quality_weights

H, D = 3, 5
MASK = np.zeros((H, D), dtype=bool)
MASK[0, :3] = True


def toy_teacher(prior: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Stochastic like a DDPM: output depends on the prior and on the generator's noise."""
    out = 0.5 * prior + 0.1 * torch.randn(prior.shape, generator=gen)
    return torch.where(torch.as_tensor(MASK), prior, out)


def toy_score(x0: torch.Tensor) -> torch.Tensor:
    return x0[:, :, 3:].sum(dim=(1, 2))


def _windows(n=50):
    return np.random.default_rng(0).standard_normal((n, H, D)).astype(np.float32)


def test_quality_weights_from_known_scores():
    w = quality_weights(np.array([3.0, 1.0, 2.0, 2.0]))
    # ranks 3, 0, (1+2)/2, (1+2)/2 over n-1 = 3 -> u = 1, 0, 0.5, 0.5
    assert np.allclose(w, [1.5, 0.5, 1.0, 1.0])
    assert np.allclose(quality_weights(np.array([5.0, -1.0]), 0.0, 2.0), [2.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        quality_weights(np.array([1.0, np.nan]))


def test_condition_prior_replaces_only_fixed_entries():
    noise, ctx = torch.randn(2, H, D), torch.randn(2, H, D)
    p = condition_prior(noise, ctx, torch.as_tensor(MASK))
    assert torch.equal(p[:, 0, :3], ctx[:, 0, :3])
    assert torch.equal(p[:, 0, 3:], noise[:, 0, 3:])
    assert torch.equal(p[:, 1:], noise[:, 1:])


def test_pairs_are_conditioned_tempered_and_scored(tmp_path):
    w = _windows()
    cfg = PairsConfig(num_pairs=2000, chunk_size=1000, batch_size=300, seed=3)
    index = generate_pairs(tmp_path, w, MASK, toy_teacher, toy_score, cfg)
    assert index["total"] == 2000 and len(index["chunks"]) == 2
    p = load_pairs(tmp_path)
    assert p["prior"].shape == (2000, H, D)
    assert np.array_equal(p["prior"][:, 0, :3], w[p["window_index"], 0, :3])
    assert np.array_equal(p["window"], w[p["window_index"]])
    assert np.allclose(p["q"], toy_score(torch.as_tensor(p["target"])).numpy(), atol=1e-5)
    assert set(np.unique(p["tau"]).tolist()) == {0.5, 0.75, 1.0}
    assert np.mean(p["tau"] == 0.5) == pytest.approx(0.5, abs=0.05)
    # free entries of the prior have std tau: check the tau = 1 and tau = 0.5 groups
    for tau in (0.5, 1.0):
        sel = p["tau"] == tau
        assert p["prior"][sel][:, 1:].std() == pytest.approx(tau, rel=0.1)
    assert len(np.unique(p["seed"])) == 2


def test_priors_per_context_groups_pairs_on_one_context_with_independent_priors(tmp_path):
    w = _windows()
    cfg = PairsConfig(num_pairs=40, chunk_size=20, batch_size=20, seed=2, priors_per_context=4)
    generate_pairs(tmp_path, w, MASK, toy_teacher, toy_score, cfg)
    p = load_pairs(tmp_path)
    groups = p["window_index"].reshape(10, 4)
    assert (groups == groups[:, :1]).all(), "4 consecutive pairs share a context window"
    assert len(np.unique(groups[:, 0])) > 5, "the groups draw different windows"
    free = p["prior"].reshape(10, 4, H, D)[:, :, 1:]
    assert (free[:, 1:] != free[:, :1]).all(), "each pair of a group has its own noise"


def test_resume_skips_existing_chunks_and_regenerates_identically(tmp_path):
    w = _windows()
    cfg = PairsConfig(num_pairs=900, chunk_size=300, batch_size=128, seed=1)
    calls = []

    def counting_teacher(prior, gen):
        calls.append(prior.shape[0])
        return toy_teacher(prior, gen)

    generate_pairs(tmp_path, w, MASK, counting_teacher, toy_score, cfg, max_chunks=2)
    assert json.loads((tmp_path / "index.json").read_text())["chunks"][-1]["file"] == "chunk_00001.npz"
    first = dict(np.load(tmp_path / "chunk_00001.npz"))
    (tmp_path / "chunk_00001.npz").unlink()
    calls.clear()
    index = generate_pairs(tmp_path, w, MASK, counting_teacher, toy_score, cfg)
    assert sum(calls) == 600  # chunk 1 (deleted) and chunk 2 (never made); chunk 0 skipped
    assert index["total"] == 900
    again = dict(np.load(tmp_path / "chunk_00001.npz"))
    for k in first:
        assert np.array_equal(first[k], again[k]), k  # same seed -> same priors and same teacher targets


def test_resume_with_another_config_is_refused(tmp_path):
    w = _windows()
    generate_pairs(tmp_path, w, MASK, toy_teacher, toy_score, PairsConfig(num_pairs=10, chunk_size=10))
    with pytest.raises(ValueError, match="another config"):
        generate_pairs(tmp_path, w, MASK, toy_teacher, toy_score, PairsConfig(num_pairs=10, chunk_size=10, seed=9))


def test_temperatures_must_be_probabilities():
    with pytest.raises(ValueError, match="sum to 1"):
        PairsConfig(temperatures={0.5: 0.5, 1.0: 0.2})
