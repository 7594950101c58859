"""A training run: its configuration, set-up, the loop, and what it leaves on disk.

- ``settings``: every run setting declared once, and ``TrainOptions`` (what was asked)
- ``resolve``: ``TrainOptions`` -> ``RunConfig``; ``config``: ``RunConfig`` and ``run.json``
- ``launch``: ``pepcurr train`` (a new run, a fork, a resume), reading what options point at
- ``setup``: everything before the first step; ``loop``: ``train``, the training loop
- ``validation``: validation sets and what is measured on them
- ``checkpoint``, ``runlog`` (``metrics.jsonl``), ``runlock``, ``tensorboard_log``;
  ``storage`` (a full disk, a file that may not be written: one clear error)
- ``stability`` (skips, spikes), ``gradients`` (gradient strength per loss)
- ``distributed`` (torchrun), ``fork`` (shared prefixes of an A/B)
- ``workers``: how a training process stops, and worker processes that end with the command

Knows models, spectra and curricula; never the analysis or the command line.
"""
