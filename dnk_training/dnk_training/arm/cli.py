"""`dnk-train` subcommands of the arm task (listed in `dnk_training.cli.build_parser`)."""
from __future__ import annotations

import argparse
import json

from ..subcommands import Handler, Subcommands, add_set_arg, parse_overrides

COMMANDS = Subcommands()


@COMMANDS.add("gen-arm-demos", "generate the arm demonstrations: seeded scenes, whole-arm-clear B-spline paths "
              "at 20 Hz, validated, in resumable shards")
def _gen_arm_demos(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("--out", default="datasets/arm_demos", help="demo folder (resumes when it exists)")
    p.add_argument("--preset", default="small", help="preset in config/arm_demos.yaml (smoke, small, paper)")
    add_set_arg(p, "scenes=500")
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def run(args: argparse.Namespace) -> int:
        from .config import load_demo_config
        from .demos import generate_demos

        cfg = load_demo_config(args.preset, parse_overrides(args.set, "scenes=500"))
        index = generate_demos(cfg, args.out, workers=args.workers or None, progress=not args.no_progress)
        print(json.dumps(index["summary"], indent=1))
        return 0

    return run
