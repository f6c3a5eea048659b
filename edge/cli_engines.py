"""``edge engines``: what an engines folder holds and whether each engine runs here, and
taking builds out of it (a thin layer over edge.inventory and edge.engines_remove)."""

from __future__ import annotations

import argparse
from typing import Any

from edge.cli_help import add_command
from edge.errors import ConfigError


def add_engines_command(sub: Any) -> None:
    p = add_command(
        sub,
        "engines",
        help="list the engines a folder holds and whether each runs here; --remove takes builds out",
    )
    p.add_argument("engines", nargs="?", help="engines directory; default: engines")
    # as every other command takes it: `edge engines --engines DIR` is what people type after them
    p.add_argument("--engines", dest="engines_option", metavar="DIR", help="the same, as an option")
    p.add_argument(
        "--verify",
        action="store_true",
        help="also hash every file against the manifest, and say whether edge build would make each "
        "engine again and why (as edge build --dry-run; not for TensorRT builds)",
    )
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument(
        "--remove",
        metavar="ID",
        action="append",
        help="take this engine out of the folder: its manifest entry, then its files (its id, "
        "MODEL_HxW_bBATCH_BACKEND_PRECISION as --json lists them, or a shell-style pattern: '*_int8'; "
        "repeatable); files an engine that stays also needs are kept",
    )
    p.add_argument("--dry-run", action="store_true", help="with --remove: say what would go, remove nothing")
    p.set_defaults(func=_cmd_engines)


def _cmd_engines(args: argparse.Namespace) -> int:
    import json

    from edge.inventory import format_inventory, inventory

    given = {name for name in (args.engines, args.engines_option) if name is not None}
    if len(given) > 1:
        raise ConfigError(f"two engines directories given: {sorted(given)}; give one")
    folder = given.pop() if given else "engines"
    if args.dry_run and not args.remove:
        raise ConfigError("--dry-run goes with --remove ID: it says what --remove would take out")
    if args.remove:
        from edge.engines_remove import remove_engines, removed_lines

        removed = remove_engines(folder, args.remove, dry_run=args.dry_run)
        print("\n".join(removed_lines(removed, dry_run=args.dry_run)))
        if args.dry_run:
            return 0
    rows = inventory(folder, verify_hashes=args.verify)
    print(json.dumps(rows, indent=2) if args.json else format_inventory(rows, folder))
    return 1 if any(r["files"] != "ok" or r["check"] == "FAILED" for r in rows) else 0
