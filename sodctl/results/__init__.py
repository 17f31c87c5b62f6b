"""Results: the file contract (``schema``), the paper's numbers (``paper``), reading results and
runs (``store``), the paper's tables (``tables``), figures (``plots``) and the report page."""
