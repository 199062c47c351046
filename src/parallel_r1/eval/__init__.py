"""Evaluation: benchmarks, graded rows and the metrics reported on them (mean@k, pass@k, maj@k).

`eval.metrics` is pure (numpy only) and imports no torch; the engine-driven parts import it.
"""
