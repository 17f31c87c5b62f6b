"""Evaluation: avg@k with the tool loop, its metrics, and resumable per-sample records."""
