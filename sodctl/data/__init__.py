"""Datasets: benchmark declarations, builders and loaders (builders arrive with the data work)."""
