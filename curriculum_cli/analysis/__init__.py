"""Reading finished runs: evaluation, comparison, statistics, A/B tests and plots.

- ``evaluation``: ``pepcurr evaluate`` and ``predict`` on MGF files
- ``run_values``: one run's values at a step; ``confounds``: what else differs between arms
- ``stats``: distribution maths; ``verdict``: the rules of a verdict, in order; ``power``:
  what an A/B could have seen
- ``compare``: runs grouped into arms, with a verdict; ``plots``: curves and schedules
- ``rescore``: final checkpoints scored again, spectrum by spectrum (``compare --rescore``)
- ``realism``: how far synthetic spectra are from real ones (``pepcurr realism``)
- ``ab``: train every arm and seed, then compare
- ``plain``: results as plain JSON data (NaN as None)

Reads logs and checkpoints; ``ab`` alone starts training runs.
"""
