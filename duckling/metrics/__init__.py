"""The metrics' plain definitions (STUDY.md's formulas): the oracle every fast path is held to."""
