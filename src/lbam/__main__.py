"""``python -m lbam`` is the same as the ``lbam`` command."""

import sys

from lbam.cli.main import main

sys.exit(main())
