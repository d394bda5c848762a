"""Deduplication stages (``cfg.dedup``): none, datatrove's exact deduplication on the
normalized text (:func:`framework.prepare.steps.normalized_text`), or its MinHash near
deduplication (Broder, 1997; the LSH banding of Leskovec, Rajaraman & Ullman, ch. 3)."""

from __future__ import annotations

from framework.errors import ConfigError
from framework.prepare.stages import Stage
from framework.prepare.steps import normalized_text

METHODS = ("none", "exact", "minhash")
MINHASH_KEYS = ("n_grams", "num_buckets", "hashes_per_bucket", "seed")


def dedup_stages(dedup) -> list[Stage]:
    """The stages that remove duplicates from the previous stage's documents (JSONL).

    ``exact``: each task hashes its documents (xxhash64 of the normalized text), one task finds
    the hashes seen before, and each task drops its duplicates: one copy of each text stays
    (datatrove keeps the one earliest in its task's input; across tasks that is not input order).

    Raises:
        ConfigError: an unknown ``dedup.method``.
    """
    if dedup.method not in METHODS:
        raise ConfigError(f"dedup.method={dedup.method!r}; valid methods are {', '.join(METHODS)}.")
    if dedup.method == "none":
        return []
    if dedup.method == "minhash":
        return minhash_stages(dedup)
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig, ExactDedupFilter, ExactDedupSignature, ExactFindDedups
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    config = ExactDedupConfig(content_getter=normalized_text)
    return [
        Stage(
            "exact-signature", {}, lambda output, folders: [JsonlReader(str(folders["filter"])), ExactDedupSignature(str(output), config)]
        ),
        Stage("exact-find", {}, lambda output, folders: [ExactFindDedups(str(folders["exact-signature"]), str(output), config)], tasks=1),
        Stage(
            "exact-filter",
            {},
            lambda output, folders: [
                JsonlReader(str(folders["filter"])),
                ExactDedupFilter(str(folders["exact-find"]), config),
                JsonlWriter(str(output)),
            ],
        ),
    ]


def minhash_stages(dedup) -> list[Stage]:
    """datatrove's four MinHash stages: signatures of word ``n_grams`` per task, one task per
    bucket finding documents that share all ``hashes_per_bucket`` hashes of a bucket, one task
    clustering them (union-find), and a filter keeping one document per cluster.

    Raises:
        ConfigError: a setting below 1.
    """
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    for key in MINHASH_KEYS[:3]:
        if dedup[key] < 1:
            raise ConfigError(f"dedup.{key}={dedup[key]} must be at least 1.")
    config = MinhashConfig(n_grams=dedup.n_grams, num_buckets=dedup.num_buckets, hashes_per_bucket=dedup.hashes_per_bucket, seed=dedup.seed)
    settings = {key: dedup[key] for key in MINHASH_KEYS}
    return [
        Stage(
            "minhash-signature",
            settings,
            lambda output, folders: [JsonlReader(str(folders["filter"])), MinhashDedupSignature(str(output), config)],
        ),
        Stage(
            "minhash-buckets",
            {},
            lambda output, folders: [MinhashDedupBuckets(str(folders["minhash-signature"]), str(output), config=config)],
            tasks=dedup.num_buckets,
        ),
        Stage(
            "minhash-cluster",
            {},
            lambda output, folders: [MinhashDedupCluster(str(folders["minhash-buckets"]), str(output), config=config)],
            tasks=1,
        ),
        Stage(
            "minhash-filter",
            {},
            lambda output, folders: [
                JsonlReader(str(folders["filter"])),
                MinhashDedupFilter(str(folders["minhash-cluster"])),
                JsonlWriter(str(output)),
            ],
        ),
    ]
