"""Run a generator on the fastest backend this machine has, measured rather than assumed.

The same generator is fastest on different engines on different CPUs: on an AVX-512 BF16 CPU
bfloat16 wins, on an AVX2-only one compiled float32 can be slower than eager while ONNX Runtime
is faster. So ``backend="auto"`` times the candidates on first use, for this machine (CPU model,
vector units, threads, torch and lbam versions), this model (a hash of its weights) and this input-size
bucket, keeps the verdict in ``<lbam cache>/backends.json`` and reuses it from then on.

Candidates (:data:`BACKENDS`):

- ``eager``: the model as it is (the reference);
- ``eager-bf16``, ``inductor-bf16``: bfloat16, only where the device computes it natively;
- ``inductor``: ``torch.compile`` (float32, frozen weights);
- ``onnxruntime``, ``openvino``: the model exported once to ONNX into ``<lbam cache>/onnx/``
  (the ``lbam[fast]`` extra).

A candidate is chosen only if its output is within tolerance of eager float32 (max abs difference
at most 1e-5 for float32 engines, PSNR at least 50 dB for bfloat16 ones) and its median time,
measured interleaved with eager's, is below eager's. Anything else, or a backend that fails, is
never chosen: eager is always the fallback.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from lbam._version import __version__
from lbam.defaults import BACKEND_CHOICES as CHOICES
from lbam.defaults import BACKENDS
from lbam.errors import LbamError
from lbam.inference.optimize import OptimizedGenerator
from lbam.model.card import Generator, card_of
from lbam.model.catalog import cache_dir
from lbam.utils.device import bf16_supported
from lbam.utils.files import atomic_write_text
from lbam.utils.machine import cpu_flags_and_model, vector_units

FP32_TOLERANCE = 1e-5  # max abs difference from eager float32, output in [0, 1]
BF16_MIN_PSNR = 50.0  # dB against eager float32
ROUNDS = 5  # timed rounds; each runs every candidate once, so load changes touch all alike
SQUARE_UP_TO = 1024  # buckets up to this side are measured on their square; larger on the input's shape
EXTRA_HINT = "pip install 'lbam[fast]'"

Runner = Callable[[Tensor, Tensor], Tensor]  # (image, known_mask) -> output, float32


@dataclass
class Verdict:
    """What ``auto`` measured for one machine, model and size bucket, and what it chose."""

    backend: str
    seconds: dict[str, float] = field(default_factory=dict)  # median per candidate
    errors: dict[str, str] = field(default_factory=dict)  # accuracy (or failure) per candidate
    first_use: dict[str, float] = field(default_factory=dict)  # export/compile seconds
    shape: tuple[int, int] = (0, 0)


# ---------------------------------------------------------------------------------- the engines


def _eager(model: nn.Module, dtype: torch.dtype) -> Runner:
    return OptimizedGenerator(model, dtype, compile=False)


def _inductor(model: nn.Module, dtype: torch.dtype) -> Runner:
    return OptimizedGenerator(model, dtype, compile=True)


def onnx_path(model: nn.Module) -> Path:
    """The model's ONNX file in the cache, exported the first time (keyed by the weights' hash)."""
    from lbam.export.onnx import export_onnx

    path = cache_dir() / "onnx" / f"{fingerprint(model)}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(model, path, quiet=True)
    return path


def _onnxruntime(model: nn.Module, dtype: torch.dtype) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # its warnings about unused initialisers are noise here
    session = ort.InferenceSession(str(onnx_path(model)), options, providers=["CPUExecutionProvider"])

    def run(image: Tensor, known_mask: Tensor) -> Tensor:
        feeds = {
            "image": image.float().contiguous().numpy(),
            "known_mask": known_mask.float().contiguous().numpy(),
        }
        return torch.from_numpy(session.run(None, feeds)[0])

    return run


def _openvino(model: nn.Module, dtype: torch.dtype) -> Runner:
    """OpenVINO, compiled once per input shape: with the shape fixed it ran the compact model at
    512 px in half the time of the dynamic-shape graph, and compiling takes about 0.2 s."""
    import openvino as ov

    core, path = ov.Core(), str(onnx_path(model))
    config = {
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
    }
    compiled: dict[tuple[int, ...], object] = {}

    def run(image: Tensor, known_mask: Tensor) -> Tensor:
        shape = tuple(image.shape)
        if shape not in compiled:
            graph = core.read_model(path)
            graph.reshape({"image": list(shape), "known_mask": [shape[0], 1, *shape[2:]]})
            compiled[shape] = core.compile_model(graph, "CPU", config)
        engine = compiled[shape]
        result = engine([image.float().contiguous().numpy(), known_mask.float().contiguous().numpy()])
        return torch.from_numpy(result[engine.output(0)].copy())

    return run


@dataclass(frozen=True)
class Engine:
    """How to build one backend's runner; ``modules``: what it needs installed."""

    build: Callable[[nn.Module, torch.dtype], Runner]
    dtype: torch.dtype = torch.float32
    modules: tuple[str, ...] = ()
    cpu_only: bool = False
    compiles_per_process: bool = False  # builds anew in every process (seconds), unlike a cached file


ENGINES: dict[str, Engine] = {
    "eager": Engine(_eager),
    "eager-bf16": Engine(_eager, torch.bfloat16),
    "inductor": Engine(_inductor, compiles_per_process=True),
    "inductor-bf16": Engine(_inductor, torch.bfloat16, compiles_per_process=True),
    "onnxruntime": Engine(_onnxruntime, modules=("onnxruntime", "onnxscript"), cpu_only=True),
    "openvino": Engine(_openvino, modules=("openvino", "onnxscript"), cpu_only=True),
}


def missing_reason(name: str, device: torch.device) -> str | None:
    """Why ``name`` cannot run here (None: it can)."""
    engine = ENGINES[name]
    if engine.cpu_only and device.type != "cpu":
        return f"{name} runs on the CPU only"
    if engine.dtype == torch.bfloat16 and not bf16_supported(device):
        return f"{device} has no native bfloat16"
    import importlib.util

    missing = [module for module in engine.modules if importlib.util.find_spec(module) is None]
    return (
        f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed ({EXTRA_HINT})"
        if missing
        else None
    )


def supports(name: str, height: int, width: int, multiple: int) -> bool:
    """Whether ``name`` takes an input of this size: ONNX Runtime runs the exported graph as it is
    (2 to 64 tiles a side); OpenVINO fixes the shape before compiling, which also makes the
    one-tile windows of thin holes work (tested against eager)."""
    from lbam.export.onnx import MAX_TILES, MIN_TILES

    if ENGINES[name].build is _onnxruntime:
        return all(MIN_TILES <= side // multiple <= MAX_TILES for side in (height, width))
    if ENGINES[name].build is _openvino:
        return all(1 <= side // multiple <= MAX_TILES for side in (height, width))
    return True


# ------------------------------------------------------------------------- keys and the verdicts


def fingerprint(model: nn.Module) -> str:
    """A hash of the architecture and the weights: the same model gets the same exported file.

    Each tensor contributes its name, shape and up to 4096 evenly spaced values: any training
    changes those, and a width-1 model (270 MB) hashes in milliseconds rather than half a second.
    """
    digest = hashlib.sha256(json.dumps(card_of(model).to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().reshape(-1)
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(flat[:: max(1, flat.numel() // 4096)].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:24]


def machine_key(device: torch.device) -> str:
    """What a verdict holds for: CPU model and vector units, threads, torch and lbam versions (an
    engine's speed changes with either), device."""
    model, flags = cpu_flags_and_model()
    versions = f"torch {torch.__version__}; lbam {__version__}"
    return f"{model}; {vector_units(flags)}; {torch.get_num_threads()} threads; {versions}; {device}"


def size_bucket(height: int, width: int) -> int:
    """The side that stands for this input in the verdicts: 256, 512, 1024, ... (the next up)."""
    bucket = 256
    while bucket < max(height, width):
        bucket *= 2
    return bucket


def verdicts_path() -> Path:
    return cache_dir() / "backends.json"


def load_verdict(key: str) -> Verdict | None:
    """The cached verdict for ``key``; None if there is none (or the file is unreadable)."""
    try:
        found = json.loads(verdicts_path().read_text())["verdicts"][key]
        return Verdict(**{**found, "shape": tuple(found["shape"])})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_verdict(key: str, verdict: Verdict) -> None:
    """Add ``verdict`` to the cache file (written atomically; an unreadable file starts afresh)."""
    path = verdicts_path()
    try:
        known = json.loads(path.read_text())["verdicts"]
    except (OSError, ValueError, KeyError, TypeError):
        known = {}
    known[key] = asdict(verdict)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"verdicts": known}, indent=1, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------- the measuring


def probe_inputs(height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """A seeded image and a mask with a quarter of it unknown (1 = known), as the accuracy check uses."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, height, width, generator=generator)
    known = torch.ones(1, 1, height, width)
    known[..., height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 0
    return image.to(device), known.to(device)


def accuracy(name: str, output: Tensor, reference: Tensor) -> tuple[bool, str]:
    """Whether ``output`` is within the tolerance of ``name``'s precision, and how far it is."""
    if ENGINES[name].dtype == torch.float32:
        worst = float((output - reference).abs().max())
        return worst <= FP32_TOLERANCE, f"max abs {worst:.1e}"
    mse = float(((output - reference) ** 2).mean())
    psnr = 10 * torch.log10(torch.tensor(1.0 / max(mse, 1e-20))).item()
    return psnr >= BF16_MIN_PSNR, f"{psnr:.1f} dB"


def _prepare(
    model: nn.Module, names: list[str], inputs: tuple[Tensor, Tensor], verdict: Verdict
) -> dict[str, Runner]:
    """Build and check every candidate; those that fail or miss the tolerance are left out."""
    with torch.inference_mode():
        reference = model(*inputs).float()
    runners = {"eager": _eager(model, torch.float32)}
    for name in names:
        if name == "eager":
            continue
        start = time.perf_counter()
        try:
            runner = ENGINES[name].build(model, ENGINES[name].dtype)
            with torch.inference_mode():
                output = runner(*inputs)
        except Exception as error:  # a broken engine is never chosen; say why in the verdict
            verdict.errors[name] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
            continue
        verdict.first_use[name] = round(time.perf_counter() - start, 3)
        good, verdict.errors[name] = accuracy(name, output, reference)
        if good:
            runners[name] = runner
    return runners


def measure(model: nn.Module, names: list[str], shape: tuple[int, int], rounds: int = ROUNDS) -> Verdict:
    """Time ``names`` against eager at ``shape`` (interleaved) and choose; see the module doc."""
    device = next(model.parameters()).device
    inputs = probe_inputs(*shape, device)
    verdict = Verdict(backend="eager", shape=shape)
    runners = _prepare(model, names, inputs, verdict)
    times: dict[str, list[float]] = {name: [] for name in runners}
    with torch.inference_mode():
        for index in range(rounds + 1):  # round 0 is not timed: caches settle after the compiles
            for name, runner in runners.items():
                start = time.perf_counter()
                runner(*inputs)
                if index:
                    times[name].append(time.perf_counter() - start)
    verdict.seconds = {name: round(statistics.median(values), 5) for name, values in times.items()}
    verdict.backend = min(verdict.seconds, key=lambda name: (verdict.seconds[name], name != "eager"))
    return verdict


# ------------------------------------------------------------------------------ the generator


def _note(message: str) -> None:
    print(f"lbam: note: {message}", file=sys.stderr)


def candidates(device: torch.device, bf16: bool, names: tuple[str, ...] = BACKENDS) -> list[str]:
    """The backends of ``names`` that can run here (bfloat16 ones only when ``bf16``)."""
    usable = [n for n in names if missing_reason(n, device) is None]
    return [n for n in usable if bf16 or ENGINES[n].dtype == torch.float32]


class BackendGenerator(Generator):
    """``model(image, known_mask)`` run on a chosen backend; same contract, float32 output.

    Args:
        model: the generator (float32).
        backend: one of :data:`CHOICES`. A named backend that cannot run here falls back to eager
            with a one-line note.
        bf16: whether ``auto`` may choose a bfloat16 backend (where the device has it natively).
        measure_new: whether ``auto`` measures a size bucket it has no cached verdict for (False:
            eager there; the server's setting once it listens, so no request waits for a measure).
        compiled: whether ``auto`` may choose inductor, which compiles again (from its cache, 2 to
            6 s per window shape) in every new process: worth it for a server, not for a folder run.
    """

    def __init__(
        self,
        model: Generator,
        backend: str = "auto",
        bf16: bool = False,
        measure_new: bool = True,
        compiled: bool = True,
    ) -> None:
        if backend not in CHOICES:
            raise LbamError(f"backend must be one of {', '.join(CHOICES)}, got {backend!r}")
        card = card_of(model)
        super().__init__(card.train_size)
        self.inner = model.eval()
        self.size_multiple, self.config = card.size_multiple, model.config
        self.device = next(model.parameters()).device
        self.backend, self.measure_new = backend, measure_new
        self.names = candidates(self.device, bf16) if backend == "auto" else [backend]
        if backend == "auto" and not compiled:  # a short-lived process: no per-process compile
            self.names = [n for n in self.names if not ENGINES[n].compiles_per_process]
        self.chosen: dict[int, str] = {}  # size bucket -> backend
        self._runners: dict[str, Runner] = {"eager": _eager(self.inner, torch.float32)}
        self._key = ""
        if backend not in ("auto", "eager") and (reason := missing_reason(backend, self.device)):
            _note(f"{reason}; running eager")
            self.names = ["eager"]

    def backend_for(self, height: int, width: int) -> str:
        """The backend that runs an input of this size (measured or read from the cache)."""
        bucket = size_bucket(height, width)
        if bucket not in self.chosen:
            self.chosen[bucket] = self._choose(bucket, (height, width))
        name = self.chosen[bucket]
        return name if supports(name, height, width, self.size_multiple) else "eager"

    def _choose(self, bucket: int, shape: tuple[int, int]) -> str:
        if self.backend != "auto":
            return self.names[0]
        if not self.measure_new and not verdicts_path().is_file():
            return "eager"  # nothing measured on this machine yet: not even the weights need hashing
        verdict = load_verdict(self.verdict_key(bucket))
        if verdict is not None and set(self.names) <= set(verdict.seconds) | set(verdict.errors):
            return self.fastest(verdict)
        if not self.measure_new:
            return "eager"
        if bucket <= SQUARE_UP_TO and bucket % self.size_multiple == 0:
            shape = (bucket, bucket)  # the bucket's square stands for all its shapes (thin ones too)
        _note(f"measuring {', '.join(self.names)} at {shape[0]}x{shape[1]} for this machine (once; cached)")
        return self.fastest(self.measure(shape))

    def fastest(self, verdict: Verdict) -> str:
        """The fastest of this generator's candidates in ``verdict`` (one measured with more
        candidates, e.g. bfloat16 ones, serves one that may use only float32)."""
        timed = {
            name: seconds
            for name, seconds in verdict.seconds.items()
            if name in self.names or name == "eager"
        }
        return min(timed, key=lambda name: (timed[name], name != "eager"))

    def verdict_key(self, bucket: int) -> str:
        """Machine, weights and size bucket: what a cached verdict holds for."""
        if not self._key:  # hashing the weights once, when a verdict is first needed
            self._key = f"{machine_key(self.device)} | {fingerprint(self.inner)}"
        return f"{self._key} | {bucket} px"

    def measure(self, shape: tuple[int, int], rounds: int = ROUNDS) -> Verdict:
        """Measure the candidates at ``shape`` now and cache the verdict for its size bucket."""
        names = [n for n in self.names if supports(n, *shape, self.size_multiple)]
        verdict = measure(self.inner, names, shape, rounds)
        verdict.errors.update({n: "input size not supported" for n in self.names if n not in names})
        save_verdict(self.verdict_key(size_bucket(*shape)), verdict)
        self.chosen[size_bucket(*shape)] = self.fastest(verdict)
        return verdict

    def _runner(self, name: str) -> Runner:
        if name not in self._runners:
            self._runners[name] = ENGINES[name].build(self.inner, ENGINES[name].dtype)
        return self._runners[name]

    def forward(self, image: Tensor, known_mask: Tensor) -> Tensor:
        name = self.backend_for(image.shape[-2], image.shape[-1])
        try:
            return self._runner(name)(image, known_mask)
        except Exception as error:  # an engine that breaks on this input: say so once, use eager
            if name == "eager":
                raise
            _note(f"{name} failed ({type(error).__name__}); running eager")
            self.chosen = {bucket: "eager" if n == name else n for bucket, n in self.chosen.items()}
            self.names = [n for n in self.names if n != name] or ["eager"]
            return self._runners["eager"](image, known_mask)
