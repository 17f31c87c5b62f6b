"""The verl plugin: ``import verl`` alone registers sodctl's parts; failures are loud.

Each subprocess starts a fresh interpreter, so verl's entry-point discovery
(``verl/__init__.py:55-76``) is what loads the plugin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("verl")

_CLEAN_IMPORT = r"""
import json, logging, os, sys
import verl  # nothing of sodctl imported before: the entry point must load the plugin

plugin = sys.modules.get("sodctl.engines.verl.plugin")
report = {"loaded_by_verl": plugin is not None}
first = plugin.status()
report["first"] = first.as_dict()

from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY
report["agent_loops"] = sorted(_agent_loop_registry)
report["reward_managers"] = sorted(REWARD_MANAGER)
report["trainers"] = sorted(TRAINER_REGISTRY)

# Registering twice: same result, nothing raised.
report["second"] = plugin.register().as_dict()

# A broken part, non-strict: reported at ERROR and kept in status().
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append((record.levelname, record.getMessage()))
logging.getLogger(plugin.__name__).addHandler(Keep())
os.environ[plugin.FAIL_ENV] = "reward"
report["broken"] = plugin.register(strict=False).as_dict()
report["records"] = records
try:
    plugin.require()
    report["require"] = "passed"
except plugin.PluginError as e:
    report["require"] = str(e)
del os.environ[plugin.FAIL_ENV]
report["recovered"] = plugin.register().as_dict()
print("REPORT " + json.dumps(report))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SODCTL_VERL_", "VERL_USE_"))}
    env.update(extra)
    return env


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_import_verl_registers_everything_and_reports_failures_at_error():
    proc = _run(_CLEAN_IMPORT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT "))
    report = json.loads(line[len("REPORT ") :])
    assert report["loaded_by_verl"]

    first = report["first"]
    assert first["ok"] and first["calls"] == 1 and first["failed"] == {}
    assert set(first["registered"]) >= {"agent_loop", "tool", "reward"}
    assert "sod_tool_agent" in first["registered"]["agent_loop"]
    assert "sod_tool_agent" in report["agent_loops"] and "tool_agent" in report["agent_loops"]
    assert "sod_dapo" in report["reward_managers"]
    # The trainer module is optional: registered when it exists, skipped when it does not.
    if "trainer" in first["registered"]:
        assert "sod_sync" in report["trainers"]
    else:
        assert "does not exist" in first["skipped"]["trainer"]

    second = report["second"]
    assert second["calls"] == 2
    assert {k: second[k] for k in ("registered", "skipped", "failed")} == {
        k: first[k] for k in ("registered", "skipped", "failed")
    }

    broken = report["broken"]
    assert not broken["ok"] and set(broken["failed"]) == {"reward"}
    assert "agent_loop" in broken["registered"]
    errors = [msg for level, msg in report["records"] if level == "ERROR"]
    assert len(errors) == 1 and "registration failed: reward" in errors[0]
    assert report["require"].startswith("sodctl verl plugin: registration failed: reward")
    assert report["recovered"]["ok"]


def test_strict_failure_stops_import_verl_with_one_line():
    proc = _run(
        "import verl\nprint('still running')",
        SODCTL_VERL_STRICT="1",
        SODCTL_VERL_PLUGIN_FAIL="1",
    )
    assert proc.returncode == 1
    assert "still running" not in proc.stdout
    ours = [ln for ln in proc.stderr.splitlines() if "sodctl verl plugin" in ln]
    assert ours == [
        "sodctl verl plugin: registration failed: agent_loop: "
        "PluginError: failure forced by SODCTL_VERL_PLUGIN_FAIL"
    ]
    assert "Traceback" not in proc.stderr
