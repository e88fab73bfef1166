"""The contracts between the stages (docs/formats.md): vocabulary, explanations-file fields, the bundle check,
export columns, blinding words, atomic writes.

Standard library only, so every stage (bla_core, generation, studyapp, analysis) can import it
without pulling in another stage's dependencies. Change a contract here, once.
"""
