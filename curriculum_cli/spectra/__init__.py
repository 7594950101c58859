"""Spectra: the chemistry, the model's vocabulary, batches, and where spectra come from.

- ``chemistry``: masses (Da), peptide spellings, the b/y fragment ladder
- ``vocabulary``: ``Vocabulary``, the model's tokens (``standard``, ``casanovo``, files),
  which are modified and of what
- ``ions``: the table of ion families (b, y, a, neutral losses, immonium, internal,
  precursor) and the fragment-charge rule, read by every module below that knows ions
- ``stage_data``: ``StageData``, a curriculum stage's data settings (lengths, noise)
- ``batch``: ``SpectrumBatch``, the one structure the model takes
- ``synthetic``: the seeded, vectorized generator of a stage's spectra (the plain b/y
  ladder), ``SpectrumSettings``
- ``world``: ``World``, the physics of realistic spectra and its intensity coefficients
- ``simulator``: the realistic spectra of a world, batched on the device
- ``fragments``: every ion an annotated spectrum may show and the peaks they explain
- ``intensity_fit``, ``calibration``: a world fitted to annotated real spectra
- ``peaks``: peak preprocessing (``PeakFilter``), one path for every spectrum
- ``mgf``, ``mztab``: files in and out; ``inspection``: the ``pepcurr inspect`` report;
  ``annotate``: annotated MGF from spectra and a search engine's PSMs
- ``split``: backbone-disjoint train/val/test files
- ``store``: indexed real spectra on disk; ``batch_source``: a training step's batch

The lowest wing above ``errors`` and ``devices``: it knows nothing of curricula, models,
training or analysis (a curriculum's ``Stage`` is a ``StageData``, its ``world`` a
``World``).
"""
