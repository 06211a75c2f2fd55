"""A small builder for self-contained HTML reports: headings, key/value tables, tables, PNG plots.

Plots are drawn with matplotlib's Agg backend and embedded as base64 data URIs, so a report is one
file that opens anywhere (CI artifacts, e-mail) with no network.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hkdeploy.fsutil import write_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
.verdict-pass{color:#0a7d28;font-weight:bold}.verdict-fail{color:#b00020;font-weight:bold}
img{max-width:100%}.muted{color:#777;font-size:.9em}
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


class HtmlReport:
    """Collects sections; ``write`` renders one self-contained HTML file (atomically)."""

    def __init__(self, title: str, subtitle: str | None = None) -> None:
        self.title = title
        self.parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        if subtitle:
            self.parts.append(f'<p class="muted">{html.escape(subtitle)}</p>')

    def heading(self, text: str, anchor: str | None = None) -> None:
        ident = f' id="{html.escape(anchor)}"' if anchor else ""
        self.parts.append(f"<h2{ident}>{html.escape(text)}</h2>")

    def text(self, text: str, css: str | None = None) -> None:
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def verdict(self, passed: bool, text: str) -> None:
        self.text(("PASS: " if passed else "FAIL: ") + text, "verdict-pass" if passed else "verdict-fail")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def key_values(self, items: dict[str, Any]) -> None:
        self.table(["", "value"], [[k, v] for k, v in items.items()])

    def figure(self, fig: Any, alt: str) -> None:
        """Embed a matplotlib figure (and close it)."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        self.image(buf.getvalue(), alt)

    def image(self, png: bytes, alt: str) -> None:
        """Embed PNG bytes (the report stays one self-contained file)."""
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"/>')

    def render(self) -> str:
        body = "\n".join(self.parts)
        return (
            f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
        )

    def write(self, path: Path) -> Path:
        return write_text(path, self.render())


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_figure(cm: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> Any:
    """A confusion-matrix heat map with counts."""
    import numpy as np

    plt = _plt()
    m = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(labels), 1.0 + 0.6 * len(labels)))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    vmax = m.max() if m.size else 0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > vmax / 2 else "black"
            )
    return fig


def bars_figure(groups: dict[str, Sequence[float]], labels: Sequence[str], title: str, ylabel: str) -> Any:
    """Grouped bars: one group per label, one bar per series."""
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 2), 3))
    width = 0.8 / max(len(groups), 1)
    x = np.arange(len(labels))
    for k, (name, values) in enumerate(groups.items()):
        ax.bar(x + k * width - 0.4 + width / 2, values, width, label=name)
    ax.set_xticks(x, labels)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def hbars_figure(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str) -> Any:
    """Horizontal bars, one per label, first label on top (per-operator profiles: many labels)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.28 * len(labels) + 1)))
    y = list(range(len(labels)))
    ax.barh(y, values, color="#4472c4")
    ax.set_yticks(y, labels, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return fig


def histogram_figure(values: Sequence[float], title: str, xlabel: str, bins: int = 40) -> Any:
    """A histogram."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(values, bins=bins, color="#4472c4")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    return fig
