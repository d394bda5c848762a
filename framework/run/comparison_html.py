"""The comparison as one self-contained HTML page (``lmf-compare --html report.html``): the
wide table and the loss plots inline (a base64 PNG), no scripts and no external resources, so a
browser opens it offline and it can be mailed or attached to a sweep as one file."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from framework.run.comparison import Run, loss_figure

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f3; }
img { max-width: 100%; }
"""


def _png_data_uri(runs: list[Run], metrics: list[str]) -> str:
    import matplotlib.pyplot as plt

    figure = loss_figure(runs, metrics)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def write_html(path: Path, title: str, header: list[str], rows: list[list[str]], runs: list[Run], metrics: list[str]) -> None:
    """Write the page: ``title``, the table (``header``, ``rows``) and one figure of ``metrics``.

    Raises:
        MissingDependencyError: matplotlib is not installed (the ``plot`` extra).
    """
    image = _png_data_uri(runs, metrics)
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<table>
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody>
</table>
<h2>{html.escape(" and ".join(metrics))} against the optimizer step</h2>
<img alt="{html.escape(", ".join(metrics))} of each run" src="{image}">
</body>
</html>
"""
    path.write_text(page, encoding="utf-8")
