"""The exceptions of lbam: :class:`LbamError` and the few kinds of it that callers tell apart.

The command line prints ``lbam: error: <message>`` for any of them and exits non-zero, with no
traceback; the server maps each kind to its HTTP status.
"""


class LbamError(Exception):
    """A user-facing error: bad input, missing file, foreign checkpoint, bad config.

    The message must be one line that names the offending file, key or value.
    """


class NotAnImageError(LbamError):
    """The data is not an image Pillow can read (the server answers 415)."""


class PixelLimitError(LbamError):
    """An image, or the work a request asks for, is over a size limit (the server answers 413)."""


class Cancelled(LbamError):
    """The work was stopped before it finished: its client went away or asked to stop."""
