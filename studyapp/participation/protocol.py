"""HTTP headers of the inline answer (study.js and the simulated participants ↔ the question view).

An answer POST with ``X-Study-Next: inline`` gets the next question page in its own response,
with that page's URL in ``X-Study-Page``, instead of a redirect: one request per answer, not two.
"""
NEXT_HEADER = "X-Study-Next"
PAGE_HEADER = "X-Study-Page"
INLINE = "inline"
