"""Command bodies of the ``sodctl`` CLI (``sodctl.cli`` only wires them together)."""
