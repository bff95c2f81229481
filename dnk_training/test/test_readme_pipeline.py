"""The README's "Offline pipeline" block, run as a user would paste it, with the smoke budget.

The block between the pipeline markers is executed verbatim through the installed console
scripts; only its three documented variable lines change (P=smoke, and A / R pointed into a
temporary folder). If a documented command or flag stops working, this test fails, so the
README section cannot rot. Each step's output is then checked as the next user would need it.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MODELS = ("fdk", "kdm", "kdmf", "cd", "ct")


def readme_block() -> str:
    text = README.read_text()
    m = re.search(r"<!-- pipeline:begin.*?-->\s*```bash\n(.*?)```\s*<!-- pipeline:end -->", text, re.S)
    assert m, "README.md lost its pipeline block (<!-- pipeline:begin --> ```bash ... ``` <!-- pipeline:end -->)"
    return m.group(1)


def smoke_script(block: str, tmp: Path) -> str:
    """The block with the documented smoke line and the two output folders swapped in."""
    lines = block.splitlines()
    swaps = {"P": "P=smoke", "A": f"A={tmp / 'art'}", "R": f"R={tmp / 'results'}"}
    out = []
    for line in lines:
        name = line.split("=", 1)[0]
        if name in swaps and re.match(rf"^{name}=\S+", line):
            out.append(swaps.pop(name))
        else:
            out.append(line)
    assert not swaps, f"README block no longer sets {sorted(swaps)} on a line of its own"
    return "set -eo pipefail\n" + "\n".join(out) + "\n"


@pytest.mark.skipif(not (ROOT / "install" / "setup.bash").is_file(), reason="needs the built workspace (scripts/setup.sh)")
def test_readme_pipeline_runs_with_the_smoke_budget(tmp_path: Path) -> None:
    script = smoke_script(readme_block(), tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV",)}
    env["MPLBACKEND"] = "Agg"
    run = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"README pipeline failed (rc {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"

    art, res = tmp_path / "art", tmp_path / "results"
    assert "halfcheetah_medium_expert-dnk-v0.hdf5  rows 200000" in run.stdout  # dnk-train datasets
    for name in ("teacher", "classifier", "iql"):
        assert (art / f"{name}.json").is_file() and (art / f"{name}.safetensors").is_file()
    for name in ("teacher", "classifier", "iql", *MODELS):
        assert (art / "runs" / name / "scalars.csv").stat().st_size > 0, name
        assert list((art / "runs" / name / "checkpoints").glob("ckpt_*.json")), name
    for split, n in (("train", 256), ("heldout", 64)):
        assert json.loads((art / "pairs" / split / "index.json").read_text())["total"] == n

    from dnk_planner.core.manifest import load_model  # the runtime's own contract check

    for m in MODELS:
        assert load_model(art / "students" / f"{m}.onnx", provider="cpu").manifest.role == "student"
    assert load_model(art / "selectors" / "critic.onnx", provider="cpu").manifest.role == "critic"
    assert load_model(art / "selectors" / "classifier.onnx", provider="cpu").manifest.role == "classifier"
    assert set(json.loads((res / "distill" / "report.json").read_text())["students"]) == set(MODELS)
    assert (res / "distill" / "distill.png").stat().st_size > 0
    table = (res / "table1" / "table1.md").read_text()
    assert "DNK (IQL)" in table and "KDM" in table
    for png in ("pareto.png", "candidates_pca.png"):
        assert (res / "table1" / png).stat().st_size > 0


def test_smoke_script_swaps_only_the_documented_lines(tmp_path: Path) -> None:
    block = readme_block()
    script = smoke_script(block, tmp_path)
    assert "P=smoke" in script and "P=small" not in script
    changed = set(script.splitlines()[1:]) ^ set(block.splitlines())
    assert len(changed) == 6  # three lines out, three in: every command runs as written
