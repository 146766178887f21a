"""The cascade analysis as a self-contained HTML page: verdict, per-layer table and three embedded plots."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from .files import atomic_file

COLUMNS = (
    ("layer", "name", "{}"),
    ("kind", "kind", "{}"),
    ("density", "density", "{:.3f}"),
    ("effective density", "effective_density", "{:.3f}"),
    ("in-degree min/mean/max", None, None),
    ("in-degree 0", "in_degree_zero_share", "{:.1%}"),
    ("dead", "dead_units", "{}"),
    ("isolated", "isolated_units", "{}"),
    ("functional (exact)", "functional", "{:.3f}"),
    ("functional (analytic)", "predicted_functional", "{:.3f}"),
    ("active (measured)", "measured_active", "{:.3f}"),
    ("active (analytic)", "predicted_active", "{:.3f}"),
    ("P(silent)", "p_silent", "{:.2g}"),
    ("gain (measured)", "measured_gain", "{:.3g}"),
    ("gain (mean-field)", "predicted_gain", "{:.3g}"),
)


def write_html(report, path: Path) -> Path:
    """Write the report to `path` atomically (temporary file, then rename)."""
    path = Path(path)
    page = render(report)
    with atomic_file(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def render(report) -> str:
    """The HTML page for a `cascc.passes.analysis.Report`."""
    data = report.to_json()
    rows = data["layers"]
    plots = "".join(
        f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,{png}"><figcaption>{html.escape(t)}</figcaption></figure>'
        for t, png in _plots(rows)
    )
    head = "".join(f"<th>{html.escape(title)}</th>" for title, _, _ in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in _cells(row)) + "</tr>" for row in rows
    )
    colour = {"healthy": "#1a7f37", "degraded": "#b35900", "collapsed": "#cf222e"}[report.status]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cascc analysis: {html.escape(report.source)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
figure{{display:inline-block;margin:0 1em 1em 0}}img{{width:380px}}</style></head><body>
<h1>Cascade analysis</h1>
<p><b>{html.escape(report.source)}</b>: {data["kept"]:,} of {data["weights"]:,} prunable weights kept (density {data["density"]:.4f}); probe: {html.escape(report.probe)}.</p>
<p style="color:{colour}"><b>{report.status}</b>: {html.escape(report.summary)}</p>
{plots}
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<p>Functional units are reachable from the input and co-reachable to an output through kept weights (exact
traversal at channel level) against the branching-process recursion on an Erdős–Rényi layered graph; gain is the
pre-activation variance ratio to the preceding layer (docs/methods.md §1).</p>
</body></html>
"""


def _cells(row: dict[str, Any]) -> list[str]:
    cells = []
    for _, key, fmt in COLUMNS:
        if key is None:
            cells.append(f"{row['in_degree_min']}/{row['in_degree_mean']:.1f}/{row['in_degree_max']}")
        else:
            cells.append("–" if row[key] is None else fmt.format(row[key]))
    return cells


def _plots(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    depth = list(range(1, len(rows) + 1))
    names = [row["name"] for row in rows]
    figures = []

    def figure(title: str, draw) -> None:
        fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
        draw(ax)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(depth, names, rotation=60, ha="right", fontsize=7)
        ax.legend(fontsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        plt.close(fig)
        figures.append((title, base64.b64encode(buffer.getvalue()).decode()))

    figure(
        "density per layer",
        lambda ax: (
            ax.bar(depth, [r["density"] for r in rows], label="density", color="#4c72b0"),
            ax.plot(
                depth,
                [r["effective_density"] for r in rows],
                "o-",
                color="#dd8452",
                label="effective density",
            ),
            ax.set_yscale("log"),
        ),
    )
    figure(
        "functional-unit fraction",
        lambda ax: (
            ax.plot(depth, [r["functional"] for r in rows], "o-", label="exact (masks)"),
            ax.plot(depth, [r["predicted_functional"] for r in rows], "s--", label="analytic (recursion)"),
            ax.axhline(0.9, color="grey", lw=0.8, ls=":"),
            ax.set_ylim(-0.02, 1.05),
        ),
    )
    figure(
        "variance gain through depth",
        lambda ax: (
            ax.plot(depth, [max(r["measured_gain"] or 0, 1e-12) for r in rows], "o-", label="measured"),
            ax.plot(depth, [max(r["predicted_gain"], 1e-12) for r in rows], "s--", label="mean-field"),
            ax.axhline(1.0, color="grey", lw=0.8, ls=":"),
            ax.set_yscale("log"),
        ),
    )
    return figures
