"""Curricula: what a run trains on and with which loss weights, step by step.

- ``schema``: ``Curriculum``, ``Stage``, ``StartWhen`` (the JSON format, validated); a
  stage's data settings (``spectra.stage_data``) and the world (``spectra.world``) are the
  spectra wing's
- ``schedule``: ``StageSchedule``, the stage in force at each step with gates resolved
- ``presets``: the design document's arms, the ``phased`` builders, ``calibrated_curriculum``
  (what ``pepcurr calibrate`` writes)
- ``files``: reading and writing curriculum files; ``load_curriculum`` (a preset or a file)
- ``checks``: a curriculum's errors and legal but suspicious values (``check_curriculum``,
  ``pepcurr validate``)

Above the spectra wing: it imports ``spectra`` (a stage's data settings, the world, a
calibration) and ``errors``, never models, training or analysis.
"""
