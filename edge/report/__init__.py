"""Benchmark reports: JSON, Markdown, a self-contained HTML page and PNG plots."""

from edge.report.bench_report import compare_markdown, write_report

__all__ = ["compare_markdown", "write_report"]
