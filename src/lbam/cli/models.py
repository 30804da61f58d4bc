"""`lbam models`: every model a name resolves to, and where to get the ones that are missing."""

from __future__ import annotations

import argparse
import json

HELP = "list the models lbam can use by name (packaged, or in the cache folder / $LBAM_HOME)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from lbam.model.catalog import cache_dir, list_models

    entries = list_models()
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    print(
        f"{'name':<16} {'source':<14} {'size':>8} {'params':>9} {'architecture':<13} {'width':>6} "
        f"{'trained':>8} {'stored':>6}  file"
    )
    for e in entries:
        if e["file"] is None:
            print(f"{e['name']:<16} {e['source']:<14}  get {e['get']}")
            continue
        settings = e.get("settings") or {}
        params = f"{e['parameters'] / 1e6:.1f} M" if e.get("parameters") else "?"
        width = f"{settings['width']:g}" if isinstance(settings.get("width"), int | float) else "?"
        kind = " ".join(str(v) for v in (e.get("architecture"), settings.get("variant")) if v)
        print(
            f"{e['name']:<16} {e['source']:<14} {e['size_mb']:>6.1f} MB {params:>9} {kind:<13} {width:>6} "
            f"{e.get('train_size', '?'):>5} px {e.get('precision', '?'):>6}  {e['file']}"
        )
    print(f"cache folder: {cache_dir()} (put <name>.safetensors or <name>.pth there to use it by name)")
    return 0
