"""Training data: the image-folder dataset (:mod:`lbam.data.dataset`) and hole masks (:mod:`lbam.data.masks`).

Nothing is imported here, so ``import lbam.data.masks`` does not pull in torch.
"""
