"""Models: the networks, the user's own models, the losses, decoding and metrics.

- ``transformer``: pepcurr's encoder-decoder (``ModelConfig``, ``MODEL_PRESETS``) and the ion
  evidence both models read (``IonEvidenceConfig``, ``CandidateEvidence``)
- ``recursive``: the recursive parallel model (``RecursiveConfig``, ``RECURSIVE_PRESETS``)
- ``refinement``: autoregressive or parallel; a model's output as refinement steps and
  the weights of their losses
- ``factory``: which network a run trains: a preset or a user factory (``build_model``)
- ``token_transfer``: a trained model's per-token weights moved into another vocabulary
- ``losses``: cross-entropy, spectrum and precursor loss (per refinement step)
- ``decoding``: greedy decoding, mass-filtered beam search, one-pass parallel decoding
- ``metrics``: Casanovo-compatible peptide metrics and accuracies

Knows spectra and curricula; never the training run or the analysis.
"""
