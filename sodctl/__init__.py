"""sodctl: reproduce and extend SOD (Step-wise On-policy Distillation) for small tool-using agents."""

__version__ = "0.1.0"
