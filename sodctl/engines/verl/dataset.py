"""verl's datasets with sodctl's conventions (``data.custom_cls``).

``SodSFTDataset``: verl's multi-turn SFT dataset, with the ``tools`` column decoded.
sodctl's SFT files (``sodctl data sft``, the tiny world) store it as a JSON string, as
the Open-AgentRL release may; verl 0.9.1 passes the cell to the chat template as it is
(``multiturn_sft_dataset.py:168-169,294``), and a template that iterates a string of
JSON renders no tool schema. Lists pass through unchanged.

``SodRLDataset``: verl's RL dataset with sodctl's prompt wrapping and agent loop.

verl's ``RLHFDataset`` reads the parquet's ``prompt`` messages as they are. The released
loader wrapped them first (one branch per file, from its first row's ``data_source``:
RELEASED-PROTOCOL B13), as sodctl's local engine does at load
(``sodctl.data.prompting.wrap_rl_rows`` with ``data.prompt_wrapping``). ``SodRLDataset``
applies the same wrapping right after verl reads the files, before verl's own
overlong-prompt filter measures them, and routes every row to sodctl's agent loop
(``agent_name``: ``sod_tool_agent``, which records the tool errors the heuristic and
mask-after-wrong weightings need). The wrapping and templates come from the composed
config's ``sod.prompt_wrapping`` / ``sod.prompts_file``, which verl passes down as the
dataset config's parent (``data``) lives beside ``sod``: ``compose`` copies them into
``data.sod_prompt_wrapping`` / ``data.sod_prompts_file``.
"""

from __future__ import annotations

from typing import Any

from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
from verl.utils.dataset.rl_dataset import RLHFDataset

from sodctl.engines.verl.agent_loop import AGENT_NAME


def wrap_rows(
    rows: list[dict[str, Any]], wrapping: str, prompts_file: str | None
) -> list[dict[str, Any]]:
    """The rows with their prompts wrapped as the local engine wraps them, and
    ``agent_name`` set to sodctl's agent loop."""
    from sodctl.data.loaders import load_prompts
    from sodctl.data.prompting import wrap_rl_rows

    wrapped, _ = wrap_rl_rows(rows, load_prompts(prompts_file), wrapping)
    return [{**row, "agent_name": AGENT_NAME} for row in wrapped]


class SodRLDataset(RLHFDataset):
    """``RLHFDataset`` whose rows are wrapped at load (module docstring)."""

    def maybe_filter_out_long_prompts(self, dataframe: Any = None) -> Any:
        """Wrap every row (verl calls this once, right after reading the files), then let
        verl's own filter measure the wrapped prompts."""
        import datasets

        wrapping = str(self.config.get("sod_prompt_wrapping", "released"))
        prompts_file = self.config.get("sod_prompts_file", None)
        rows = wrap_rows(dataframe.to_list(), wrapping, prompts_file)
        return super().maybe_filter_out_long_prompts(datasets.Dataset.from_list(rows))


def decode_tools(cell: Any) -> Any:
    """A ``tools`` cell as the chat template wants it: a JSON string decoded, "" -> None."""
    import json

    if isinstance(cell, str):
        return json.loads(cell) if cell.strip() else None
    return cell


class SodSFTDataset(MultiTurnSFTDataset):
    """``MultiTurnSFTDataset`` with JSON ``tools`` cells decoded (module docstring)."""

    def _read_files_and_process(self) -> None:
        super()._read_files_and_process()
        if self.tools is not None:
            self.tools = [decode_tools(t) for t in self.tools]
