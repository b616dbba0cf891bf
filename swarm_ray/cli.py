"""The ``swarm-ray`` command line. Each command lives in ``swarm_ray.commands.<name>``
and exposes ``register(subparsers)``; the module is imported only when needed."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from swarm_ray.core.config import ConfigError
from swarm_ray.core.errors import CommandError
from swarm_ray.core.logs import configure_logging

# command name -> module that implements it
COMMANDS: dict[str, str] = {
    "backtest": "swarm_ray.commands.backtest",
    "evaluate": "swarm_ray.commands.evaluate",
    "demo": "swarm_ray.commands.demo",
    "train": "swarm_ray.commands.train",
    "check-exchange": "swarm_ray.commands.check_exchange",
    "check-llm": "swarm_ray.commands.check_llm",
    "run": "swarm_ray.commands.run",
    "status": "swarm_ray.commands.status",
    "stop": "swarm_ray.commands.stop",
    "explain": "swarm_ray.commands.explain",
    "kill-switch": "swarm_ray.commands.kill_switch",
    "panel": "swarm_ray.commands.panel",
    "serve": "swarm_ray.commands.serve",
    "data": "swarm_ray.commands.data",
    "tune-consensus": "swarm_ray.commands.tune_consensus",
    "calibrate": "swarm_ray.commands.calibrate",
    "learn": "swarm_ray.commands.learn",
    "models": "swarm_ray.commands.models",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swarm-ray",
        description="A swarm of learned market-making agents on Ray.",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log records as readable lines (default) or one JSON object each; Ray's actors too",
    )
    parser.add_argument("--log-level", default="WARNING", help="default WARNING")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        if only is not None and name != only:
            # keep the listing complete without importing every command's dependencies
            sub.add_parser(name, help=f"(see swarm-ray {name} --help)")
            continue
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser(only)
    args = parser.parse_args(argv)
    configure_logging(args.log_format, args.log_level)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
