"""Evaluation: the NVIDIA-bin protocol (:mod:`.protocol`), methods (:mod:`.methods`), LPIPS
(:mod:`.lpips`), FID (:mod:`.fid`), the report (:mod:`.report`) and the run (:mod:`.evaluate`).

The metrics themselves live in :mod:`lbam.imaging.metrics`. Nothing is imported here, so
``import lbam.evaluation`` stays light.
"""
