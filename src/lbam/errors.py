"""The one exception type the package raises for problems a user can fix."""


class LbamError(Exception):
    """A user-facing error: bad input, missing file, foreign checkpoint, bad config.

    The command line prints ``lbam: error: <message>`` and exits non-zero, with no traceback,
    so the message must be one line that names the offending file, key or value.
    """
