"""The ``verl.plugins`` entry point: register sodctl's parts with verl, check them, fail loudly.

verl 0.9.1 discovers plugins when it is imported (``verl/__init__.py:55-76``): for every
entry point of the group ``verl.plugins`` it calls ``ep.load()``, which imports the module
and fetches the named attribute **without calling it**, inside ``except Exception`` that
logs at DEBUG. So a broken plugin vanishes silently, in every process that imports verl
(driver, TaskRunner, agent-loop and reward workers, rollout servers). Hence:

- sodctl's entry point is ``sodctl = "sodctl.engines.verl.plugin:register"``
  (``pyproject.toml``). Importing this module runs ``register()`` once; a loader that also
  calls the loaded object (a later verl) runs it again, which is harmless.
- ``register()`` imports the modules that register things, then checks each registry
  (paths in ``verl/``):

  - ``agent_loop``: ``sodctl.engines.verl.agent_loop`` registers ``sod_tool_agent`` in
    ``experimental/agent_loop/agent_loop.py:467`` (``_agent_loop_registry``);
  - ``tool``: ``sodctl.engines.verl.tool.CodeInterpreterTool`` is a ``BaseTool`` (verl
    loads tools by class name from the tool YAML; there is no registry);
  - ``reward``: ``sodctl.engines.verl.reward`` registers ``sod_dapo`` in
    ``experimental/reward_loop/reward_manager/registry.py:21`` (``REWARD_MANAGER``, which
    ``RewardManagerConfig.__post_init__`` checks in the driver);
  - ``trainer``: ``sodctl.engines.verl.trainer`` registers ``sod_sync`` in
    ``trainer/ppo/v1/trainer_base.py:1996`` (``TRAINER_REGISTRY``).

  A part whose module does not exist is ``skipped``, not failed (the trainer module is
  optional); any exception or missing registration is ``failed``.
- A failure is logged at ERROR (verl's own message would be DEBUG) and kept:
  ``status()`` says what registered, what was skipped and what failed.
- With ``SODCTL_VERL_STRICT=1`` (sodctl's own launches set it, in the Ray runtime env
  too) a failure ends the process with one line, ``sodctl verl plugin: ...``: it raises
  ``SystemExit``, which verl's ``except Exception`` does not catch, so ``import verl``
  itself stops.
- ``SODCTL_VERL_PLUGIN_FAIL=<part>[,<part>...]`` (or ``1`` for ``agent_loop``) makes those
  parts fail on purpose, to test the reporting.

Registering twice is harmless: the modules register at import (once per process) and
the checks only read the registries.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from sodctl.engines.verl.compose import TRAINER_MODE

logger = logging.getLogger(__name__)

STRICT_ENV = "SODCTL_VERL_STRICT"
FAIL_ENV = "SODCTL_VERL_PLUGIN_FAIL"
PARTS: tuple[str, ...] = ("agent_loop", "tool", "reward", "trainer")


class PluginError(RuntimeError):
    """A part of the plugin did not register."""


@dataclass
class PluginStatus:
    """What ``register()`` found: part -> a one-line description (``registered``,
    ``skipped``) or the error (``failed``); ``calls`` counts ``register()`` calls."""

    registered: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    calls: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, object]:
        return {
            "registered": dict(self.registered),
            "skipped": dict(self.skipped),
            "failed": dict(self.failed),
            "calls": self.calls,
            "ok": self.ok,
        }

    def summary(self) -> str:
        """One line naming every failed part and its error."""
        return "; ".join(f"{part}: {err}" for part, err in self.failed.items())


_status = PluginStatus()


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _forced_failures() -> set[str]:
    value = os.environ.get(FAIL_ENV, "").strip()
    if not value or value.lower() in ("0", "false", "no", "off"):
        return set()
    if value.lower() in ("1", "true", "yes", "on"):
        return {"agent_loop"}
    return {p.strip() for p in value.split(",") if p.strip()}


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _initialising(name: str) -> bool:
    """Whether module ``name`` is half-imported (its own import loaded verl, which loaded
    this plugin): its registrations run when its import finishes."""
    module = sys.modules.get(name)
    return bool(
        module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False)
    )


def _check_agent_loop() -> str:
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

    from sodctl.engines.verl import agent_loop

    entry = _agent_loop_registry.get(agent_loop.AGENT_NAME)
    want = f"{agent_loop.SodToolAgentLoop.__module__}.{agent_loop.SodToolAgentLoop.__qualname__}"
    if entry is None or entry.get("_target_") != want:
        raise PluginError(
            f"agent loop {agent_loop.AGENT_NAME!r} is not in verl's registry "
            f"(found {entry!r}; registered: {sorted(_agent_loop_registry)})"
        )
    return f"{agent_loop.AGENT_NAME} -> {want}"


def _check_tool() -> str:
    from verl.tools.base_tool import BaseTool

    from sodctl.engines.verl import tool

    cls = tool.CodeInterpreterTool
    if not issubclass(cls, BaseTool):
        raise PluginError(f"{cls!r} is not a verl BaseTool")
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_reward() -> str:
    from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER

    from sodctl.engines.verl import reward

    if REWARD_MANAGER.get(reward.REWARD_MANAGER_NAME) is not reward.SodDAPORewardManager:
        raise PluginError(
            f"reward manager {reward.REWARD_MANAGER_NAME!r} is not in verl's registry "
            f"(registered: {sorted(REWARD_MANAGER)})"
        )
    return f"{reward.REWARD_MANAGER_NAME} -> {reward.__name__}.SodDAPORewardManager"


def _check_loss() -> str:
    from verl.trainer.distillation.losses import DISTILLATION_LOSS_REGISTRY

    from sodctl.engines.verl import loss

    if DISTILLATION_LOSS_REGISTRY.get(loss.LOSS_NAME) is not loss.sod_reinforce_losses:
        raise PluginError(f"distillation loss {loss.LOSS_NAME!r} is not in verl's registry")
    return f"{loss.LOSS_NAME} -> {loss.__name__}.sod_reinforce_losses"


def _check_trainer() -> str:
    importlib.import_module("sodctl.engines.verl.trainer")
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    cls = TRAINER_REGISTRY.get(TRAINER_MODE)
    if cls is None:
        raise PluginError(
            f"trainer {TRAINER_MODE!r} is not in verl's registry "
            f"(registered: {sorted(TRAINER_REGISTRY)})"
        )
    return f"{TRAINER_MODE} -> {cls.__module__}.{cls.__qualname__}"


_CHECKS: dict[str, tuple[str, Callable[[], str]]] = {
    "agent_loop": ("sodctl.engines.verl.agent_loop", _check_agent_loop),
    "tool": ("sodctl.engines.verl.tool", _check_tool),
    "reward": ("sodctl.engines.verl.reward", _check_reward),
    "loss": ("sodctl.engines.verl.loss", _check_loss),
    "trainer": ("sodctl.engines.verl.trainer", _check_trainer),
}


def register(strict: bool | None = None) -> PluginStatus:
    """Import and check every part (see the module docstring); returns ``status()``.

    ``strict`` (default: ``SODCTL_VERL_STRICT``) turns a failure into ``SystemExit`` with
    one line; otherwise failures are logged at ERROR and kept in the status.
    """
    strict = _flag(STRICT_ENV) if strict is None else strict
    forced = _forced_failures()
    result = PluginStatus(calls=_status.calls + 1)
    for part, (module, check) in _CHECKS.items():
        try:
            if part in forced:
                raise PluginError(f"failure forced by {FAIL_ENV}")
            if not _module_exists(module):
                result.skipped[part] = f"{module} does not exist"
                continue
            if _initialising(module):  # its import brought verl in: it registers as it ends
                result.skipped[part] = f"{module} is being imported (it registers itself)"
                continue
            result.registered[part] = check()
        except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal here
            result.failed[part] = f"{type(e).__name__}: {e}".splitlines()[0]
    _status.registered, _status.skipped = result.registered, result.skipped
    _status.failed, _status.calls = result.failed, result.calls
    if result.failed:
        line = f"sodctl verl plugin: registration failed: {result.summary()}"
        if strict:
            raise SystemExit(line)  # Python prints the line; verl cannot swallow it
        logger.error("%s (%s=1 stops the process here)", line, STRICT_ENV)
    return status()


def status() -> PluginStatus:
    """A copy of the last ``register()`` result (``calls == 0``: never registered)."""
    return PluginStatus(
        dict(_status.registered), dict(_status.skipped), dict(_status.failed), _status.calls
    )


def require() -> PluginStatus:
    """``register()`` if it has not run, then raise ``PluginError`` on any failure (for
    sodctl's own launchers, which want an exception rather than ``SystemExit``)."""
    current = status() if _status.calls else register(strict=False)
    if not current.ok:
        raise PluginError(f"sodctl verl plugin: registration failed: {current.summary()}")
    return current


# verl's loader only imports (ep.load() is not called): register on import.
register()
