"""The ``lbam`` command line: one module per sub-command, each with ``HELP``, ``add_arguments`` and ``run``."""
