"""Stimulus generation: turn explanation files into blinded, paired stimulus bundles for the user study.

Depends on numpy, Pillow and matplotlib colormaps only (never torch or Django), so a researcher can
build and check bundles on a laptop without the deep-learning stack.
"""

from generation.errors import GenerationError

__version__ = "0.1.0"

__all__ = ["GenerationError", "__version__"]
