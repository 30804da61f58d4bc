"""Shared by the inference tests: stand-in generators that keep the generator contract."""

from lbam.model.card import Generator


class StubConfig:
    """The settings of a stand-in generator (what a card shows)."""

    def to_dict(self) -> dict:
        return {"architecture": "stub"}


class Recorder(Generator):
    """Wraps a generator and records the (H, W) of every input it sees."""

    def __init__(self, inner, train_size=None):
        super().__init__(train_size or inner.card.train_size)
        self.inner = inner
        self.config = inner.config
        self.size_multiple = inner.card.size_multiple
        self.shapes = []

    def forward(self, image, known_mask):
        self.shapes.append(tuple(image.shape[-2:]))
        return self.inner(image, known_mask)
