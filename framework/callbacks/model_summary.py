"""The model summary printed before training, without Lightning's FLOPs column."""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import RichModelSummary
from pytorch_lightning.utilities.model_summary.model_summary import get_formatted_model_size, get_human_readable_count


class ParameterSummary(RichModelSummary):
    """Lightning's rich model summary limited to the modules that hold parameters, with one line of
    totals (trainable, frozen, size in MB).

    Lightning's own table has a FLOPs column that reads 0 unless the module defines
    ``example_input_array``; the FLOPs that matter here are per token and logged as ``perf/mfu``
    (:class:`framework.callbacks.ThroughputLogger`).

    Args:
        max_depth: module depth of the rows (1: the task's direct children), as Lightning's.
    """

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        columns = dict(summary_data)
        table = Table(header_style="bold")
        for name in ("Name", "Type", "Params"):
            table.add_column(name, justify="right" if name == "Params" else "left")
        for name, kind, parameters in zip(columns["Name"], columns["Type"], columns["Params"]):
            if parameters.strip() != "0":
                table.add_row(name, kind, parameters)
        console = get_console()
        console.print(table)
        frozen = total_parameters - trainable_parameters
        console.print(
            f"Parameters: {get_human_readable_count(trainable_parameters).strip()} trainable, "
            f"{get_human_readable_count(frozen).strip()} frozen; "
            f"{get_formatted_model_size(model_size)} MB",
            highlight=False,
        )
