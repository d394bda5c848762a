"""Names of sweep jobs (framework.logger.names)."""

from framework.logger import names


def test_a_long_job_name_keeps_whole_overrides_and_says_it_was_cut(monkeypatch):
    keys = [f"model.key_{index}" for index in range(8)]
    monkeypatch.setattr(names.process_env, "swept_keys", lambda: keys)
    overrides = [f"{key}=0.00024156772025296256" for key in keys]
    name = names.varying_overrides(overrides)
    assert len(name) <= names.MAX_NAME_CHARS and name.endswith(",...")
    assert name[: -len(",...")].split(",") == overrides[: len(name[: -len(",...")].split(","))]  # no value cut short
    assert names.varying_overrides(overrides[:2]) == ",".join(overrides[:2])
