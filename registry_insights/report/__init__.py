"""The capacity report: CSVs, PNG plots and one self-contained HTML page."""

from .build import csv_ready, summary_text, write_report

__all__ = ["csv_ready", "summary_text", "write_report"]
