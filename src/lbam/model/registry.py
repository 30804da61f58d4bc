"""The registry of generator architectures: one place that maps a name to its config and its class.

Every generator lbam can build, train, save and load is registered here with a frozen dataclass of
its constructor arguments (stored in weight files and in training configs under
``model.generator``). Adding an architecture means writing its module and one :func:`register` call.

    model = build_generator("pconv", width=0.5, layers=7)
    model = build_from_metadata({"architecture": "lbam", "variant": "released", "width": 0.25}, train_size=128)

Every generator is a :class:`lbam.model.card.Generator`: its ``card`` describes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from lbam.config import from_dict
from lbam.defaults import DEFAULT_TRAIN_SIZE
from lbam.errors import LbamError
from lbam.model.card import Generator, check_train_size
from lbam.model.lbam import LBAMConfig, LBAMGenerator
from lbam.model.pconv import PConvConfig, PConvUNet


@dataclass(frozen=True)
class Architecture:
    """A registered generator: ``generator(**asdict(config))`` builds it."""

    name: str
    config: type  # frozen dataclass of the constructor's keyword arguments, with their defaults
    generator: type[Generator]
    summary: str


ARCHITECTURES: dict[str, Architecture] = {}


def register(architecture: Architecture) -> None:
    """Make ``architecture`` known by its name to training, loading, export and evaluation."""
    ARCHITECTURES[architecture.name] = architecture


def get_architecture(name: str) -> Architecture:
    """The registered architecture called ``name``; LbamError listing the known names otherwise."""
    if name not in ARCHITECTURES:
        raise LbamError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def generator_config(
    name: str, values: Mapping[str, Any] | None = None, where: str = "model.generator"
) -> Any:
    """The typed config of architecture ``name`` from plain ``values`` (missing keys keep defaults).

    Raises:
        LbamError: an unknown architecture, an unknown key (the message lists the valid ones) or a
            value of the wrong type.
    """
    try:
        return from_dict(get_architecture(name).config, dict(values or {}), where)
    except ValueError as error:  # the config's own range checks
        raise LbamError(f"{where}: {error}") from None


def build_generator(
    architecture: str = "lbam", train_size: int = DEFAULT_TRAIN_SIZE, **values: Any
) -> Generator:
    """A freshly initialised generator of a registered architecture.

    Args:
        architecture: a registered name.
        train_size: the side of the crops it will be trained on (its card keeps it).
        **values: the architecture's settings; missing ones take their defaults.

    Raises:
        LbamError: an unknown architecture, or settings the generator refuses (the message says why).
    """
    config = generator_config(architecture, values)
    try:
        return get_architecture(architecture).generator(**asdict(config), train_size=train_size)
    except (TypeError, ValueError) as error:
        raise LbamError(f"bad {architecture} generator settings: {error}") from None


def build_from_metadata(metadata: Mapping[str, Any], train_size: int = DEFAULT_TRAIN_SIZE) -> Generator:
    """A generator from the config stored in a weight file: ``{"architecture": name, **fields}``."""
    values = dict(metadata)
    name = str(values.pop("architecture", "lbam"))
    config = generator_config(name, values, where="its config")  # range checks before any allocation
    try:
        check_train_size(train_size)
    except ValueError as error:
        raise LbamError(f"its train_size: {error}") from None
    return get_architecture(name).generator(**asdict(config), train_size=train_size)


register(
    Architecture(
        "lbam",
        LBAMConfig,
        LBAMGenerator,
        "LBAM (Xie et al., ICCV 2019): U-Net with learnable bidirectional attention maps",
    )
)
register(
    Architecture(
        "pconv",
        PConvConfig,
        PConvUNet,
        "partial-convolution U-Net (Liu et al., ECCV 2018), the baseline LBAM improves on",
    )
)
