"""Finding image files in folders: one extension set and one hidden-file rule for all of lbam.

Training photos, mask folders, evaluation sets and ``lbam inpaint`` folders are all listed here, so
a folder means the same files to every command:

- a file counts when its suffix, in any letter case, is one of :data:`IMAGE_SUFFIXES`;
- names starting with ``.`` (hidden files, macOS ``._x.jpg`` forks) are skipped, and so are
  hidden folders when searching recursively;
- the result is sorted by the path relative to the folder, so the order is the same everywhere;
- symlinked folders are followed once (a link loop is not walked twice).
"""

from __future__ import annotations

import os
from pathlib import Path

from lbam.errors import LbamError
from lbam.imaging.formats import SUFFIX_FORMATS

IMAGE_SUFFIXES = tuple(SUFFIX_FORMATS)


def is_image_path(path: str | os.PathLike) -> bool:
    """True for a visible file name whose suffix is one of :data:`IMAGE_SUFFIXES`."""
    name = Path(path).name
    return not name.startswith(".") and Path(name).suffix.lower() in SUFFIX_FORMATS


def list_images(folder: str | os.PathLike, recursive: bool = True, what: str = "image") -> list[Path]:
    """The image files in ``folder`` (see the module doc for the rules), sorted by relative path.

    Args:
        folder: the folder to search.
        recursive: also search sub-folders (``lbam inpaint`` folder runs use only the top level).
        what: what the files are ("image", "mask", ...), for the error messages.

    Raises:
        LbamError: ``folder`` is not a folder, or holds no image files.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise LbamError(f"{what} folder not found: {str(root)!r}")
    # Links are listed even when broken: a photo that cannot be read is reported, never skipped.
    files = list(_walk(root) if recursive else (p for p in root.iterdir() if p.is_file() or p.is_symlink()))
    found = sorted((p for p in files if is_image_path(p)), key=lambda p: p.relative_to(root).as_posix())
    if not found:
        suffixes = ", ".join(s[1:] for s in IMAGE_SUFFIXES)
        raise LbamError(f"{what} folder {str(root)!r} holds no {what} files ({suffixes})")
    return found


def _walk(root: Path) -> list[Path]:
    files: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, names in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop
            dirnames.clear()
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        files.extend(Path(dirpath) / name for name in names)
    return files
