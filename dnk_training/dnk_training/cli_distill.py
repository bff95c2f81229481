"""dnk-train discovers ``cli_*`` modules; importing distill_cli registers the distillation subcommands."""
import dnk_training.distill_cli  # noqa: F401
