"""Training drivers: the local engine (PyTorch, CPU or one GPU) and, later, verl."""
