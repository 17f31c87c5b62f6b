"""The tiny world: a synthetic tool-integrated-reasoning suite for the whole pipeline on CPU.

It mirrors the paper's four benchmark columns with problem families a ~1M-parameter
character-level model can solve only by calling the tool and copying its result
(``problems``), in the very schemas of the real data: the Open-AgentRL-Eval files
(read by the real ``load_benchmark``), the verl RL parquet, the Open-AgentRL-SFT
parquet written by a scripted expert through the real tool (``expert``), tool-free
pretraining text (``pretrain``), and a zoo of random tiny Qwen3 checkpoints.
``sodctl data tiny`` runs ``build_tinyworld``.
"""

from sodctl.data.tinyworld.build import (
    TINY_PROMPTS_FILE,
    TINYWORLD_VERSION,
    WORLD_SIZES,
    BuildResult,
    WorldSizes,
    build_tinyworld,
)
from sodctl.data.tinyworld.problems import BENCH_OF, FAMILIES, TinyProblem, draw_problems

__all__ = [
    "BENCH_OF",
    "FAMILIES",
    "TINYWORLD_VERSION",
    "TINY_PROMPTS_FILE",
    "WORLD_SIZES",
    "BuildResult",
    "TinyProblem",
    "WorldSizes",
    "build_tinyworld",
    "draw_problems",
]
