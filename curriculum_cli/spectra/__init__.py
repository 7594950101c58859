"""Spectra: the chemistry, the model's vocabulary, batches, and where spectra come from.

- ``chemistry``: masses (Da), peptide spellings, the b/y fragment ladder
- ``vocabulary``: ``Vocabulary``, the model's tokens (``standard``, ``casanovo``, files),
  which are modified and of what
- ``annotate``: annotated MGF from spectra and a search engine's PSMs
- ``batch``: ``SpectrumBatch``, the one structure the model takes
- ``synthetic``: the seeded, vectorized generator of a stage's spectra
- ``peaks``: peak preprocessing (``PeakFilter``), one path for every spectrum
- ``mgf``, ``mztab``: files in and out; ``inspection``: the ``pepcurr inspect`` report
- ``split``: backbone-disjoint train/val/test files
- ``store``: indexed real spectra on disk; ``sampling``: a training step's batch

Knows curricula (a stage's data settings), never models, training or analysis.
"""
