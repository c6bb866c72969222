"""Operations: the container, the benchmarks, cleaning a run's outputs."""
