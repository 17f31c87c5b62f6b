"""Model construction and loading (tiny local models for tests and the tiny world)."""
