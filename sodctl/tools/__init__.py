"""The code interpreter's executors: a local pool of warm sandboxes (default) and, later, SandboxFusion."""

from sodctl.tools.local import LocalExecutor
from sodctl.tools.result import STATUSES, ExecResult, Status

__all__ = ["STATUSES", "ExecResult", "LocalExecutor", "Status"]
