"""``python -m sodctl.engines.verl.main --config-path DIR --config-name config``: a verl RL
run of a composed sodctl config (``sodctl train EXP --engine verl`` writes it and runs this).

As verl's ``main_ppo.main`` does: the device is set, verl's ``validate_config`` checks the
config, then ``run_ppo`` starts (or joins) Ray and runs the v1 task runner, whose trainer
is ``trainer.v1.trainer_mode`` (``sod_sync``: ``sodctl.engines.verl.trainer``). The plugin
is registered here first, strictly, so that a broken install stops in this process with
one line rather than inside a Ray actor; every verl process registers it again through
the ``verl.plugins`` entry point.
"""

from __future__ import annotations

import hydra


@hydra.main(config_path=None, config_name=None, version_base=None)
def main(config) -> None:
    from sodctl.engines.verl.plugin import register

    register(strict=True)
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    validate_config(
        config=config,
        use_reference_policy=need_reference_policy(config),
        use_critic=need_critic(config),
    )
    run_ppo(config, task_runner_class=TaskRunnerV1)


if __name__ == "__main__":
    main()
