"""Curricula: what a run trains on and with which loss weights, step by step.

- ``schema``: ``Curriculum``, ``Stage``, ``StartWhen`` (the JSON format, validated); a
  stage's data settings (``spectra.stage_data``) and the world (``spectra.world``) are the
  spectra wing's
- ``schedule``: ``StageSchedule``, the stage in force at each step with gates resolved
- ``presets``: the design document's arms, the ``phased`` builders, ``calibrated_curriculum``
  (what ``pepcurr calibrate`` writes); ``load_curriculum``
- ``files``: reading and writing curriculum files
- ``checks``: legal but suspicious curricula (``pepcurr validate`` warnings)

Above the spectra wing: it imports ``spectra`` (a stage's data settings, the world, a
calibration) and ``errors``, never models, training or analysis.
"""
