"""The paper's ablation as one command: PConv, forward-only attention, fixed attention and full LBAM
trained under identical conditions and evaluated on the same pairs (``lbam ablate``).

    settings = AblationSettings(data="photos/train", val_data="photos/val", out="ablation", steps=3000)
    run_ablation(settings)   # trains what is missing, evaluates, writes ablation/report.md
"""

from lbam.ablation.run import AblationSettings, run_ablation
from lbam.ablation.variants import VARIANTS, Variant, parse_variants

__all__ = ["VARIANTS", "AblationSettings", "Variant", "parse_variants", "run_ablation"]
