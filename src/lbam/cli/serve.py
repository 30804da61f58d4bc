"""`lbam serve`: the web editor and the HTTP API on this machine.

lbam serve                      # http://127.0.0.1:8080, the packaged model
lbam serve --model lbam-psv --port 9000 --open
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from lbam.cli.runtime import (
    add_device_argument,
    add_model_argument,
    add_runtime_arguments,
    apply_threads,
    runtime_model,
)
from lbam.defaults import DEFAULT_MAX_PIXELS
from lbam.errors import LbamError

HELP = "open the web editor (paint a mask, inpaint, download) and the HTTP API"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)"
    )
    parser.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    add_device_argument(parser)
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    parser.add_argument(
        "--max-upload-mb", type=float, default=50.0, metavar="MB", help="largest upload (default: 50)"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help="largest photo in pixels (default: 144 M)",
    )
    parser.add_argument(
        "--output-dir", type=Path, metavar="DIR", help="also keep every result here (unique names)"
    )
    parser.add_argument(
        "--queue", type=int, default=4, metavar="N", help="requests that may wait (default: 4)"
    )
    parser.add_argument(
        "--max-memory-mb",
        type=float,
        metavar="MB",
        help="refuse requests whose estimated peak memory is larger (413; default: half of this "
        "machine's memory)",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also answer pages of this origin, e.g. http://my.site (repeatable; * for any)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests addressed to this host name (repeatable; * for any)",
    )
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from lbam.inference.pipeline import get_model
    from lbam.server.app import ServerSettings, create_app
    from lbam.server.listen import bind, serve_forever
    from lbam.utils.device import resolve_device

    _check_arguments(args)
    sock = bind(args.host, args.port)  # before the model loads: a port in use fails at once
    apply_threads(args)
    device = resolve_device(args.device)
    model = _prepared(runtime_model(get_model(args.model, device), args, many=True, server=True), device)
    settings = ServerSettings(
        str(args.model),
        args.max_upload_mb,
        args.max_pixels,
        args.output_dir,
        args.queue,
        host=args.host,
        allow_hosts=tuple(args.allow_host),
        allow_origins=tuple(args.allow_origin),
        max_memory_mb=args.max_memory_mb if args.max_memory_mb is not None else _half_the_memory_mb(),
    )
    app = create_app(model, device, settings, _shelf(args, model, device))
    if not _is_loopback(args.host):
        print(
            f"lbam: warning: listening on {args.host}: anyone who can reach this machine can use the server "
            "(it has no authentication)",
            file=sys.stderr,
        )
    port = sock.getsockname()[1]
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{port}/"
    print(f"lbam serve: {url} (model {args.model} on {device}); Ctrl-C stops it", flush=True)
    if args.open:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, (url,)).start()
    serve_forever(app, sock)
    return 0


def _prepared(model: object, device: object) -> object:
    """``model`` with its backend measured (or compiled) for its window shapes now, not in a request."""
    from lbam.inference.backends import BackendGenerator

    if isinstance(model, BackendGenerator):
        print(
            "lbam serve: preparing the model's backend for its window shapes (cached for the next start)",
            flush=True,
        )
        from lbam.inference.optimize import warm_up

        warm_up(model, device)
    return _settled(model)


def _settled(model: object) -> object:
    """A served model never measures inside a request: a size or model not measured before takes
    its cached verdict (``lbam models --bench`` makes them), else runs eagerly."""
    from lbam.inference.backends import BackendGenerator

    if isinstance(model, BackendGenerator):
        model.measure_new = False
    return model


def _shelf(args: argparse.Namespace, model: object, device: object) -> object:
    """The started model, the other installed ones (loaded when a request names one), the classical fills."""
    from lbam.inference.pipeline import get_model
    from lbam.model.catalog import list_models
    from lbam.server.models import ModelShelf

    installed = tuple(entry["name"] for entry in list_models() if entry["file"] is not None)
    return ModelShelf(
        str(args.model),
        model,
        installed,
        lambda name: _settled(runtime_model(get_model(name, device), args, many=True, server=True)),
    )


def _half_the_memory_mb() -> float | None:
    from lbam.inference.budget import default_budget_bytes

    budget = default_budget_bytes(0.5)
    return None if budget is None else budget / 2**20


def _check_arguments(args: argparse.Namespace) -> None:
    if args.max_memory_mb is not None and not args.max_memory_mb > 0:
        raise LbamError(f"--max-memory-mb must be positive, got {args.max_memory_mb}")
    if not 0 <= args.port <= 65535:
        raise LbamError(f"--port must be from 0 to 65535, got {args.port}")
    if not (args.max_upload_mb > 0 and args.max_pixels > 0 and args.queue >= 0):
        raise LbamError("--max-upload-mb and --max-pixels must be positive, --queue 0 or more")
    if args.output_dir is not None:
        if args.output_dir.exists() and not args.output_dir.is_dir():
            raise LbamError(f"--output-dir {args.output_dir} exists and is not a folder")
        args.output_dir.mkdir(parents=True, exist_ok=True)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
