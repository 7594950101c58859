"""Curricula: what a run trains on and with which loss weights, step by step.

- ``schema``: ``Curriculum``, ``Stage``, ``StartWhen`` (the JSON format, validated)
- ``world``: ``World``, the physics of realistic spectra a curriculum may train on
- ``schedule``: ``StageSchedule``, the stage in force at each step with gates resolved
- ``presets``: the design document's arms and the ``phased`` builders
- ``files``: reading and writing curriculum files; ``load_curriculum`` (a preset or a file)
- ``checks``: a curriculum's errors and legal but suspicious values (``check_curriculum``,
  ``pepcurr validate``)

The lowest wing: it imports nothing of pepcurr but ``errors``.
"""
