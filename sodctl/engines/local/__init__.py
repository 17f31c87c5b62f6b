"""The local engine: SFT and the RL/distillation loop on one device, over the shared core."""
