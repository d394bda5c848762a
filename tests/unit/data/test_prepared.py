"""Reading prepared datasets: shards as one stream, and windows drawn from a mixture by weight."""

import numpy as np
import pytest

from framework.data.prepared import MixtureWindows, ShardedTokens


def test_shards_read_as_one_stream_across_their_boundaries(tmp_path):
    rng = np.random.default_rng(0)
    parts = [rng.integers(0, 60_000, size, dtype=np.uint16) for size in (1000, 0, 37, 2000)]
    for index, part in enumerate(parts):
        part.tofile(tmp_path / f"{index}.ds")
    tokens = ShardedTokens([tmp_path / f"{index}.ds" for index in range(4)], np.uint16)
    joined = np.concatenate(parts)
    assert len(tokens) == 3037 and len(tokens.shards) == 3  # the empty shard is skipped
    positions = rng.integers(0, 3037 - 65, (50, 1)) + np.arange(65)
    assert np.array_equal(tokens[positions], joined[positions])


def test_a_mixture_samples_each_source_by_weight_and_depends_only_on_the_sample_index():
    sources = [np.full(1000, value, dtype=np.uint16) for value in (1, 2, 3)]
    weights = [2.0, 3.0, 5.0]
    windows = MixtureWindows(sources, weights, block_size=8, num_samples=20_000, seed=7)
    x, y = windows.__getitems__(list(range(20_000)))
    assert torch_equal_rows(x, y)
    counts = np.bincount(x[:, 0].numpy(), minlength=4)[1:]
    for count, weight in zip(counts, weights):
        p = weight / sum(weights)
        assert abs(count - p * 20_000) < 4 * (20_000 * p * (1 - p)) ** 0.5  # within 4 binomial standard deviations

    resumed = MixtureWindows(sources, weights, block_size=8, num_samples=20_000, seed=7)
    resumed.first_sample = 12_345  # a run resumed after 12,345 samples continues the same sequence
    for a, b in zip(resumed.__getitems__(list(range(100))), windows.__getitems__(list(range(12_345, 12_445)))):
        assert np.array_equal(a.numpy(), b.numpy())
    other_seed = MixtureWindows(sources, weights, block_size=8, num_samples=100, seed=8)
    assert not np.array_equal(other_seed.choices(np.arange(100))[0], windows.choices(np.arange(100))[0])


def test_windows_of_a_mixture_come_from_the_chosen_source_at_the_chosen_offset():
    sources = [np.arange(500, dtype=np.uint16), np.arange(1000, 1300, dtype=np.uint16)]
    windows = MixtureWindows(sources, [1, 1], block_size=16, num_samples=64, seed=3)
    source, start = windows.choices(np.arange(64))
    x, _ = windows.__getitems__(list(range(64)))
    for row, (which, offset) in enumerate(zip(source, start)):
        assert np.array_equal(x[row].numpy(), sources[which][offset : offset + 16])
        assert 0 <= offset <= len(sources[which]) - 17


def torch_equal_rows(x, y) -> bool:
    return bool((x[:, 1:] == y[:, :-1]).all())


@pytest.mark.parametrize("weights", [[1.0, 0.0], [1.0, -2.0]])
def test_a_weight_that_is_not_positive_is_refused(tmp_path, weights):
    from framework.data.prepared import PreparedMixture
    from framework.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data.mixture\[1\].weight=.* must be a positive number"):
        PreparedMixture([{"path": str(tmp_path), "weight": weight} for weight in weights])


def test_a_folder_that_is_not_a_dataset_is_named_with_what_it_holds(tmp_path):
    from framework.data.prepared import PreparedCorpus
    from framework.errors import MissingInputError

    with pytest.raises(MissingInputError, match=r"no manifest.json\); make one with python -m framework.prepare"):
        PreparedCorpus(tmp_path)
    for name in ("books", "web"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text("{}")
    with pytest.raises(MissingInputError, match=r"it holds the datasets books, web of a several-source preparation"):
        PreparedCorpus(tmp_path)
