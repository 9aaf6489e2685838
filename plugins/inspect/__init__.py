"""``egoforge inspect``: a dataset or an evaluation run as a static, self-contained, browsable HTML report.

``build_report(data, out, predictions=..., answers=...)`` reads LLaMA-Factory ShareGPT (images or frame-list
videos), the EgoCross testbed or verl RLHF parquet, and writes ``out/index.html`` with thumbnails beside it.
"""

from egoforge.inspect.build import BuiltReport, ReportError, build_report

__all__ = ["BuiltReport", "ReportError", "build_report"]
