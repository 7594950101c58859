"""Models: the networks, the user's own models, the losses, decoding and metrics.

- ``transformer``: pepcurr's encoder-decoder (``ModelConfig``, ``MODEL_PRESETS``)
- ``source``: which network a run trains: a preset or a user factory (``build_model``)
- ``token_transfer``: a trained model's per-token weights moved into another vocabulary
- ``losses``: cross-entropy, spectrum and precursor loss
- ``decoding``: greedy decoding and mass-filtered beam search
- ``metrics``: Casanovo-compatible peptide metrics and accuracies

Knows spectra and curricula; never the training run or the analysis.
"""
