"""Analysis of exported study answers: every comparison of methods, a Bradley–Terry ranking,
the paper's preference statistics and figures, an HTML report.

Reads the two export CSVs (``answers.csv``, ``participants.csv``, see docs/formats.md) and never
imports torch or Django, so an analyst can run it on a laptop: ``python -m analysis report``.
"""

__version__ = "0.1.0"
