"""Configuration: the typed schema and the loader that composes experiment files.

``load_config`` is the one entry point; ``to_yaml`` / ``resolved_dict`` show
what a run will use; ``method_spec`` gives the resolved method's switches.
"""

from sodctl.config.loader import (
    available_experiments,
    available_presets,
    experiments_dir,
    find_experiment,
    load_config,
    parse_override,
    resolved_dict,
    to_yaml,
)
from sodctl.config.paths import final_model_dir, run_root
from sodctl.config.schema import PRESETS, SIZES, SodctlConfig, method_spec, validate

__all__ = [
    "PRESETS",
    "SIZES",
    "SodctlConfig",
    "available_experiments",
    "available_presets",
    "experiments_dir",
    "final_model_dir",
    "find_experiment",
    "load_config",
    "method_spec",
    "parse_override",
    "resolved_dict",
    "run_root",
    "to_yaml",
    "validate",
]
