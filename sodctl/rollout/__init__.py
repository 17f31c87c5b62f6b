"""Multi-turn tool-integrated rollouts: generation engines and the agent loop."""

from sodctl.rollout.engine import Completion, GenerationEngine, SamplingParams

__all__ = ["Completion", "GenerationEngine", "SamplingParams"]
