"""Start-up cost: loading a model and inpainting must not pull in torch's compiler stack.

Initialising weights on the ``meta`` device (the shape check before a file is trusted) imports
``torch._dynamo`` through torch's reference implementations: 2 s of a 4000x3000 photo's 4 s.
"""

from __future__ import annotations

import subprocess
import sys

from PIL import Image


def test_inpaint_in_a_fresh_process_does_not_import_the_compiler(tmp_path):
    Image.new("RGB", (300, 200), (120, 80, 40)).save(tmp_path / "photo.png")
    mask = Image.new("L", (300, 200), 0)
    mask.paste(255, (100, 50, 140, 90))
    mask.save(tmp_path / "mask.png")
    code = (
        "import sys, lbam\n"
        "from PIL import Image\n"
        f"photo, mask = Image.open({str(tmp_path / 'photo.png')!r}), Image.open({str(tmp_path / 'mask.png')!r})\n"
        "assert lbam.inpaint(photo, mask).size == (300, 200)\n"
        "heavy = sorted(m for m in ('torch._dynamo', 'torch._inductor', 'sympy') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
