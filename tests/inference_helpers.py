"""Shared by the inference tests: a wrapper that records what the model is asked to process."""

from torch import nn


class Recorder(nn.Module):
    """Wraps a generator and records the (H, W) of every input it sees."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.size_multiple = inner.size_multiple
        self.shapes = []

    def forward(self, image, known_mask):
        self.shapes.append(tuple(image.shape[-2:]))
        return self.inner(image, known_mask)
