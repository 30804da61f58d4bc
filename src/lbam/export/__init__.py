"""Turn trained models into files for inference: a generator ``.safetensors`` from a training run
(:func:`export_generator`) and ONNX (:mod:`lbam.export.onnx`)."""

from lbam.export.generator import export_generator, generator_from_run

__all__ = ["export_generator", "generator_from_run"]
