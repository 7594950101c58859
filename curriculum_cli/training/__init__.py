"""A training run: its configuration, set-up, the loop, and what it leaves on disk.

- ``config``: ``RunConfig`` and ``run.json``; ``options``: ``TrainOptions`` -> ``RunConfig``
- ``loop``: ``train``, the training loop; ``validation``: validation sets and metrics
- ``checkpoint``, ``runlog`` (``metrics.jsonl``), ``runlock``, ``tensorboard_log``
- ``stability`` (skips, spikes), ``gradients`` (gradient strength per loss)
- ``distributed`` (torchrun), ``fork`` (shared prefixes of an A/B)

Knows models, spectra and curricula; never the analysis or the command line.
"""
