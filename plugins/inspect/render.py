"""HTML of the report: a server-rendered header (summary, issues) and the samples as inert JSON for the page script.

Untrusted text (questions, responses, file names) reaches the page only two ways: escaped by ``html.escape`` in
the header, or inside a ``type="application/json"`` block with every ``<``, ``>`` and ``&`` written as a JSON
escape, which the script reads with ``JSON.parse`` and puts on the page with ``textContent``. A per-build nonce
in the Content-Security-Policy keeps any injected ``<script>`` from running even if escaping were missed.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from dataclasses import dataclass, field
from importlib import resources

from egoforge.data.validate import Issue
from egoforge.inspect.samples import Sample
from egoforge.inspect.summary import Summary
from egoforge.inspect.thumbnails import Thumb

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_SLOT = re.compile(r"\{\{(\w+)\}\}")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def embed_json(obj: object) -> str:
    """JSON that cannot close its ``<script>`` element or open a comment, whatever strings it holds."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group(0)], text)


def asset(name: str) -> str:
    return resources.files("egoforge.inspect").joinpath(name).read_text(encoding="utf-8")


def sample_payload(sample: Sample, thumbs: list[Thumb], frames_total: int) -> dict:
    """What the page script needs of one sample (see report.js for how each key is shown)."""
    record = sample.prediction
    return {
        "row": sample.row,
        "id": sample.id,
        "domain": sample.domain,
        "category": sample.category,
        "qtype": sample.question_type,
        "question": sample.question,
        "options": [list(o) for o in sample.options],
        "answer": sample.answer,
        "frames": [{"src": t.src, "href": t.href, "t": t.time, "label": t.label, "w": t.width, "h": t.height,
                    "problem": t.problem, "field": t.field} for t in thumbs],
        "framesTotal": frames_total,
        "pred": None if record is None else {
            "prediction": str(record.get("prediction") or ""),
            "reason": str(record.get("reason") or ""),
            "status": str(record.get("parse_status") or ""),
            "raw": str(record.get("raw_response") or ""),
        },
        "verdict": sample.verdict,
        "why": sample.why,
        "issues": [{"field": i.field or "", "message": i.message, "severity": i.severity} for i in sample.issues],
        "raw": sample.raw,
    }


@dataclass
class ReportInfo:
    title: str
    data_file: str
    fmt: str
    n_samples: int
    media_root: str
    generated: str
    predictions_file: str | None = None
    answers_file: str | None = None
    summary: Summary | None = None
    file_issues: list[Issue] = field(default_factory=list)
    rows_with_issues: int = 0
    row_issue_count: int = 0


def _cell(value: object) -> str:
    if value is None:
        return "<td>–</td>"
    return f"<td>{value:.2f}</td>" if isinstance(value, float) else f"<td>{esc(value)}</td>"


def _table(rows: dict[str, dict], columns: list[str], first: str, cls: str, mark_first: bool = True) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in [first, *columns])
    body = []
    for i, (name, row) in enumerate(rows.items()):
        cells = "".join(_cell(row.get(c)) for c in columns)
        kind = "this-run" if i == 0 and mark_first else "reference"
        body.append(f'<tr class="{kind}"><th>{esc(name)}</th>{cells}</tr>')
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _summary_html(summary: Summary) -> str:
    results = summary.results
    parts = [f'<section class="summary" id="summary"><h2>Accuracy <small>({esc(summary.scorer)})</small></h2>',
             '<div class="summary-body"><div>',
             _table(summary.rows, summary.columns, "run", "accuracy"),
             f'<p class="counts">{sum(t.total for t in results.per_domain.values())} scored questions'
             f" · micro {results.micro:.2f} · macro {results.macro:.2f}"]
    status = ", ".join(f"{esc(k)} {v}" for k, v in sorted(results.parse_status.items()))
    if status:
        parts.append(f" · parse status: {status}")
    if results.missing_predictions:
        parts.append(f" · <strong>{len(results.missing_predictions)} without a prediction</strong> (counted wrong)")
    if results.missing_answers:
        parts.append(f" · {len(results.missing_answers)} without a ground truth (not scored)")
    if summary.unmatched_predictions:
        parts.append(f" · {summary.unmatched_predictions} predictions match no sample")
    parts.append("</p>")
    categories = {c: {"accuracy": t.accuracy, "n": t.total} for c, t in sorted(results.per_category.items())}
    if len(categories) > 1:
        parts.append('<details class="categories"><summary>per category</summary>')
        parts.append(_table(categories, ["accuracy", "n"], "category", "accuracy categories", mark_first=False))
        parts.append("</details>")
    parts.append("</div>")
    if summary.chart:
        parts.append(f'<img class="chart" src="{esc(summary.chart)}" alt="accuracy per domain">')
    parts.append("</div></section>")
    return "".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _issues_html(info: ReportInfo) -> str:
    if not info.file_issues and not info.rows_with_issues:
        return ""
    parts = ['<section class="issues-summary" id="issues"><h2>Validation issues</h2>']
    if info.rows_with_issues:
        parts.append(f'<p>{_count(info.row_issue_count, "issue")} in {_count(info.rows_with_issues, "row")}, '
                     'highlighted below. '
                     '<button type="button" id="show-issues">show only those rows</button></p>')
    if info.file_issues:
        parts.append('<ul class="file-issues">')
        for issue in info.file_issues[:200]:
            parts.append(f'<li class="{esc(issue.severity)}">{esc(issue)}</li>')
        if len(info.file_issues) > 200:
            parts.append(f"<li>... {len(info.file_issues) - 200} more</li>")
        parts.append("</ul>")
    parts.append("</section>")
    return "".join(parts)


def header_html(info: ReportInfo) -> str:
    facts = [("data", info.data_file), ("format", info.fmt), ("samples", info.n_samples),
             ("media root", info.media_root)]
    if info.predictions_file:
        facts.append(("predictions", info.predictions_file))
    if info.answers_file:
        facts.append(("answers", info.answers_file))
    facts.append(("built", info.generated))
    dl = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts)
    summary = _summary_html(info.summary) if info.summary else ""
    return f'<header class="top"><h1>{esc(info.title)}</h1><dl class="facts">{dl}</dl></header>' \
           f"{summary}{_issues_html(info)}"


def render_page(info: ReportInfo, samples: list[dict], page_size: int, has_predictions: bool) -> str:
    """The whole self-contained page: inline CSS and script, no external URL."""
    nonce = secrets.token_urlsafe(16)
    payload = {"samples": samples, "pageSize": page_size, "hasPredictions": has_predictions}
    values = {
        "title": esc(info.title),
        "nonce": nonce,
        "style": asset("report.css"),
        "header": header_html(info),
        "data": embed_json(payload),
        "script": asset("report.js"),
    }
    # One pass: text substituted into a slot is never scanned for further slots.
    return _SLOT.sub(lambda m: values[m.group(1)], asset("report.html"))
