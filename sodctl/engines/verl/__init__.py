"""The verl engine: sodctl's core inside released verl 0.9.1, without a fork.

Importing this package imports nothing from verl; the modules that need verl import it
themselves (``plugin`` is what verl's ``verl.plugins`` entry point loads).
"""


def require_verl() -> None:
    """One line when verl (the ``verl`` extra) is not installed."""
    import importlib.util

    from sodctl.errors import SodctlUsageError

    if importlib.util.find_spec("verl") is None:
        raise SodctlUsageError(
            "the verl engine needs verl 0.9.1: pip install -e '.[verl]' (and '.[gpu]' on a GPU "
            "cluster for vLLM), or use --engine local"
        )
