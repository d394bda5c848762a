"""Deduplication stages (``cfg.dedup``): none, or datatrove's exact deduplication on the
normalized text (:func:`framework.prepare.steps.normalized_text`)."""

from __future__ import annotations

from framework.errors import ConfigError
from framework.prepare.stages import Stage, StageRunner
from framework.prepare.steps import normalized_text

METHODS = ("none", "exact")


def dedup_stages(dedup, runner: StageRunner) -> list[Stage]:
    """The stages that remove duplicates from the previous stage's documents (JSONL).

    ``exact``: each task hashes its documents (xxhash64 of the normalized text), one task finds
    the hashes seen before, and each task drops its duplicates, keeping the first copy in input
    order. The pipelines read earlier stages' folders from ``runner`` when they run.

    Raises:
        ConfigError: an unknown ``dedup.method``.
    """
    if dedup.method not in METHODS:
        raise ConfigError(f"dedup.method={dedup.method!r}; valid methods are {', '.join(METHODS)}.")
    if dedup.method == "none":
        return []
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig, ExactDedupFilter, ExactDedupSignature, ExactFindDedups
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    config = ExactDedupConfig(content_getter=normalized_text)

    def output_of(stages_back: int) -> str:
        return str(runner.runs[-stages_back].directory / "output")

    return [
        Stage("exact-signature", {}, lambda output: [JsonlReader(output_of(1)), ExactDedupSignature(str(output), config)]),
        Stage("exact-find", {}, lambda output: [ExactFindDedups(output_of(1), str(output), config)], tasks=1),
        Stage(
            "exact-filter",
            {},
            lambda output: [JsonlReader(output_of(3)), ExactDedupFilter(output_of(1), config), JsonlWriter(str(output))],
        ),
    ]
