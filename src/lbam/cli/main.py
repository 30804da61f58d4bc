"""Entry point of the ``lbam`` console command.

Each sub-command lives in its own module under ``lbam.cli`` and exposes three names:
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Command modules import
torch and other heavy packages inside ``run`` so that ``lbam --help`` stays fast.

Errors a user can fix are raised as :class:`lbam.errors.LbamError` anywhere in the package; they are
printed here as one line and the process exits with status 2. Set ``LBAM_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from typing import NoReturn

from lbam._version import __version__
from lbam.errors import LbamError

COMMANDS = {
    "inpaint": "lbam.cli.inpaint",
    "demo": "lbam.cli.demo",
    "convert": "lbam.cli.convert",
    "train": "lbam.cli.train",
    "export": "lbam.cli.export",
    "masks": "lbam.cli.masks",
    "evaluate": "lbam.cli.evaluate",
    "ablate": "lbam.cli.ablate",
    "serve": "lbam.cli.serve",
    "models": "lbam.cli.models",
}

# Errors of the machine, not of lbam: a full disk or quota, a read-only or forbidden folder.
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors as one ``lbam: error: ...`` line (no usage dump), exit status 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("lbam").strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_USER_ERROR, f"lbam: error: {where}{message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="lbam",
        description="Image inpainting with Learnable Bidirectional Attention Maps (Xie et al., ICCV 2019).",
    )
    parser.add_argument("--version", action="version", version=f"lbam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads that spin while waiting ran up to 2.7x slower beside another torch job;
    # passive waiting costs 7 to 23 % on a quiet machine (benchmarks/threads.py). It must be set
    # before torch loads OpenMP; a value the user set wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stopped:  # --help, --version, or a one-line argument error
        return int(stopped.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args._run(args) or 0)
    except LbamError as error:
        print(f"lbam: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as error:
        if error.errno not in DISK_ERRORS:
            return _internal_error(error)
        where = f" {error.filename}" if error.filename else ""
        print(f"lbam: error: cannot write{where}: {error.strerror}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("lbam: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug, not bad input: still one line unless debugging
        if is_out_of_memory(error):
            print(f"lbam: error: {OUT_OF_MEMORY}", file=sys.stderr)
            return EXIT_USER_ERROR
        return _internal_error(error)


OUT_OF_MEMORY = (
    "out of memory: use --strategy fit (the default for inpaint) or a smaller --max-size, a smaller "
    "--batch-size for training, or a machine with more memory"
)


def is_out_of_memory(error: BaseException) -> bool:
    """An allocation that failed: Python's MemoryError, or torch's allocator (CPU or CUDA)."""
    text = str(error)
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)
    )


def _internal_error(error: Exception) -> int:
    if os.environ.get("LBAM_DEBUG"):
        raise error
    print(
        f"lbam: internal error: {type(error).__name__}: {error} (set LBAM_DEBUG=1 for the traceback)",
        file=sys.stderr,
    )
    return EXIT_INTERNAL_ERROR
