"""Curricula: what a run trains on and with which loss weights, step by step.

- ``schema``: ``Curriculum``, ``Stage``, ``StartWhen`` (the JSON format, validated)
- ``schedule``: ``StageSchedule``, the stage in force at each step with gates resolved
- ``presets``: the design document's arms and the ``phased`` builders; ``load_curriculum``
- ``files``: reading and writing curriculum files
- ``checks``: legal but suspicious curricula (``pepcurr validate`` warnings)

The lowest wing: it imports nothing of pepcurr but ``errors``.
"""
