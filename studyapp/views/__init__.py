"""Views of the study app: ``participant`` (the volunteers' pages) and ``dashboard`` (the researcher's)."""
