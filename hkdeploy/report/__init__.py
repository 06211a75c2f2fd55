"""Reports: self-contained HTML (plots embedded), JSON, JUnit. No TensorFlow."""

from hkdeploy.report.html import HtmlReport

__all__ = ["HtmlReport"]
