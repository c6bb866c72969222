"""The analyze stage: one pass over a movie computes the Record from the metrics' definitions."""
