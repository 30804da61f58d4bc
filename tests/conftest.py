import sys
from pathlib import Path

# tests import small helpers that live next to them (official_recipe.py)
sys.path.insert(0, str(Path(__file__).parent))
