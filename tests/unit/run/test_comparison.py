"""The comparison command's optional plot."""

import sys

import pytest

from framework.errors import MissingDependencyError
from framework.run.comparison import plot


def test_plotting_without_matplotlib_names_the_extra_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'lm-framework\[plot\]'"):
        plot(tmp_path / "curves.png", [], ["val/loss"])
    assert not (tmp_path / "curves.png").exists()
