import numpy as np
import torch

from dnk_training.classifier import ReturnClassifier, train_classifier
from dnk_training.configs import TaskConfig
from dnk_training.normalizer import Normalizer
from dnk_training.teacher import Teacher


def toy_set(n: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Windows whose return grows with the mean action: good ones act +1, bad ones -1."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4, 23)).astype(np.float32)
    quality = rng.uniform(-1, 1, size=n).astype(np.float32)
    x[:, :, 17:] = quality[:, None, None] + 0.1 * rng.normal(size=(n, 4, 6))
    return x, (100.0 * quality + 50.0).astype(np.float32)


def test_classifier_ranks_good_above_bad(tiny_cfg: TaskConfig, tmp_path) -> None:
    cfg = tiny_cfg.model_copy(deep=True)
    cfg.classifier.train = cfg.classifier.train.model_copy(update={"steps": 200, "batch_size": 32, "ckpt_every": 200, "log_every": 100, "lr": 3e-3})
    x, v = toy_set()
    norm = Normalizer.fit(x.reshape(-1, 23))
    clf = train_classifier(cfg, x, v, norm, tmp_path / "run", progress=False)
    good, bad = x[:2].copy(), x[:2].copy()
    good[:, :, 17:], bad[:, :, 17:] = 0.9, -0.9
    with torch.no_grad():
        vg = clf(torch.as_tensor(norm.normalize(good)), 0)
        vb = clf(torch.as_tensor(norm.normalize(bad)), 0)
    assert (vg > vb + 50).all(), (vg, vb)  # true gap is 180 return units
    # output is in return units, not standardized
    assert abs(float(clf.value_mean) - v.mean()) < 1e-3

    # guidance pushes samples toward higher predicted return
    torch.manual_seed(0)
    teacher = Teacher(cfg, norm).eval()
    prior = teacher.make_prior({"obs": torch.zeros(64, 17)}, 1.0, torch.Generator().manual_seed(0))
    plain = teacher.sample(prior, generator=torch.Generator().manual_seed(1))
    guided = teacher.sample(prior, guidance_weight=0.05, generator=torch.Generator().manual_seed(1), classifier=clf)
    with torch.no_grad():
        assert clf(guided, 0).mean() > clf(plain, 0).mean()


def test_classifier_save_load(tiny_cfg: TaskConfig, tmp_path) -> None:
    clf = ReturnClassifier(tiny_cfg, Normalizer(np.zeros(23), np.ones(23)), 12.0, 3.0)
    clf.save(tmp_path / "classifier", step=1)
    again = ReturnClassifier.load(tmp_path / "classifier.json")
    x = torch.randn(5, 4, 23)
    assert torch.equal(clf(x, 3), again(x, 3))
    assert float(again.value_std) == 3.0
