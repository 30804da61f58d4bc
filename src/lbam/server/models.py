"""The models one server may run: the one it started with, other installed generators, classical fills.

The page lists them (``GET /api/v1/models``) and a request picks one with its ``model`` field.
Other generators are loaded on first use, on the worker thread (so a load never blocks the
event loop), and the most recently used one is kept beside the started model. The classical fills
(:class:`lbam.model.classical.ClassicalFill`) run through the same pipeline as a network.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from lbam.errors import LbamError
from lbam.imaging.classical import CLASSICAL_FILLS
from lbam.model.card import card_of
from lbam.model.classical import ClassicalFill

Loader = Callable[[str], nn.Module]


class ModelShelf:
    """Models by name.

    Args:
        name: the started model's name or file; ``model``: the started model.
        networks: names of other installed generators that ``loader(name)`` can load.
        loader: loads a generator by name (None: only the started model and the classical fills).
    """

    def __init__(
        self, name: str, model: nn.Module, networks: tuple[str, ...] = (), loader: Loader | None = None
    ):
        self.default = Path(name).name  # a file's name, never its folder (pages of other sites may read it)
        self._started = model
        self._loader = loader
        self._networks = (self.default, *(n for n in networks if n != self.default and loader is not None))
        self._recent: tuple[str, nn.Module] | None = None

    def names(self) -> list[dict[str, Any]]:
        """What the page lists: each name, whether it is a network or a classical fill, the default."""
        networks = [{"name": n, "kind": "network", "default": n == self.default} for n in self._networks]
        return networks + [{"name": n, "kind": "classical", "default": False} for n in CLASSICAL_FILLS]

    def check(self, name: str | None) -> str:
        """``name`` (None: the default) if this server can run it; LbamError naming the choices."""
        name = name or self.default
        if name not in self._networks and name not in CLASSICAL_FILLS:
            known = ", ".join(entry["name"] for entry in self.names())
            raise LbamError(f"unknown model {name!r}; this server runs: {known}")
        return name

    def get(self, name: str | None) -> nn.Module:
        """The model called ``name``, loaded if needed (call it on the worker thread)."""
        name = self.check(name)
        if name == self.default:
            return self._started
        if name in CLASSICAL_FILLS:
            return ClassicalFill(name)
        if self._recent is None or self._recent[0] != name:
            self._recent = None  # let the old one go before the new one loads
            assert self._loader is not None
            model = self._loader(name)
            card_of(model)  # a loader must give a generator
            self._recent = (name, model)
        return self._recent[1]
