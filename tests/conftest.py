import os
import sys
from pathlib import Path

# Commands and servers the tests start run the model as it is: measuring the backends (which
# exports and compiles) is tested on its own in test_backends.py, not repeated by every test.
os.environ.setdefault("LBAM_BACKEND", "eager")

# tests import small helpers that live next to them (official_recipe.py)
sys.path.insert(0, str(Path(__file__).parent))


import pytest  # noqa: E402  (after the path set-up above)

from training_helpers import make_photos  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Six small random photos for training tests (one folder per test module)."""
    return make_photos(tmp_path_factory.mktemp("photos"))
