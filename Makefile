# The README's two Quickstart commands: `make demo` and `make test`.
# Both install what they need first (idempotent; quick when already installed).
PYTHON ?= python3
# A CPU build of torch: on this project's machines `torch==2.13.0` resolves to the CPU wheel.
# Elsewhere, install torch yourself first (e.g. from https://download.pytorch.org/whl/cpu);
# an existing torch is never replaced.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test bench lint

install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install -q "$(TORCH_SPEC)"
	@$(PYTHON) -m pip install -q -e ".[test]"

# The whole pipeline in miniature (tiny world -> pretrain -> SFT -> GRPO teacher -> every
# student method -> avg@k -> Table 1): about 27-32 minutes on 2 cores. `--preset smoke`
# runs every stage for two steps in ~3 minutes (plumbing only; the tests run it).
demo: install
	$(PYTHON) -m sodctl reproduce table1 --preset tiny

test: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) benchmarks/bench_core.py

lint:
	ruff check sodctl tests benchmarks
