"""The self-contained HTML report builder (shared by export and validate reports)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from hkdeploy.report.html import HtmlReport, bars_figure, confusion_figure, histogram_figure


def test_sections_tables_escaping_and_embedded_pngs(tmp_path: Path) -> None:
    r = HtmlReport("run <1>", "sub & title")
    r.heading("Verdict", "verdict")
    r.verdict(False, "accuracy < threshold")
    r.table(["name", "value"], [["<script>", 0.123456789], ["n", 3]])
    r.key_values({"a&b": "x"})
    r.figure(confusion_figure([[3, 1], [0, 4]], ["N", "AF"], "cm"), "confusion")
    r.figure(bars_figure({"float": [0.9, 0.8], "tflm": [0.85, 0.8]}, ["N", "AF"], "F1", "F1"), "bars")
    r.figure(histogram_figure([0.0, 0.1, -0.1, 0.2], "err", "error"), "hist")
    path = r.write(tmp_path / "report.html")
    text = path.read_text()
    raw = path.read_bytes()
    assert b"\r\n" not in raw and text.startswith("<!DOCTYPE html>")
    assert '<h2 id="verdict">Verdict</h2>' in text
    assert "FAIL: accuracy &lt; threshold" in text and "verdict-fail" in text
    assert "&lt;script&gt;" in text and "<script>" not in text  # cells are escaped
    assert "<td>0.123457</td>" in text  # floats to 6 significant digits
    assert "run &lt;1&gt;" in text and "sub &amp; title" in text and "a&amp;b" in text
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 3
    assert all(base64.b64decode(img).startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:|//)', text)
