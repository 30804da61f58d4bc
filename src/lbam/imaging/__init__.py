"""Images and masks as files and arrays, with no torch model in sight.

- :mod:`.io` -- the one image reader (:func:`~lbam.imaging.io.open_pil`, with the pixel limit) and
  writer (atomic, verified), EXIF and colour profiles kept;
- :mod:`.formats` -- the one table of file formats;
- :mod:`.masks` -- the one mask reader and resize, hole maps (True = hole), the NVIDIA bins;
- :mod:`.files` -- the one image lister;
- :mod:`.pixels` -- float to 8-bit, the composite;
- :mod:`.metrics` -- PSNR, SSIM, L1 (batched, differentiable);
- :mod:`.harmonic` -- the harmonic blend; :mod:`.png` -- the fast PNG encoder.
"""
