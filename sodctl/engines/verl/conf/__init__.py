"""Hydra configs of the verl engine (a package so that Hydra finds them as a config module)."""
