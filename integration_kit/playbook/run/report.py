"""The report of a playbook run: the executed stage notebooks merged into one self-contained HTML page.

Cells tagged ``verdict`` open the report (the verdict table and the findings), then every other cell in notebook
order: the design document, the exercise, the charts. Code is hidden; charts are embedded as data, so the file can
be uploaded as a CI artifact and opened anywhere. A run that failed opens with a banner naming the stage, the cell
and the error, above what ran.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter

__all__ = ["FAILURE_TAG", "render_report"]

#: The tag of the banner cell a failed run's report opens with.
FAILURE_TAG = "failure"


def render_report(notebooks: Iterable[Path], target: Path, *, title: str, error: str | None = None) -> Path | None:
    """Merge executed notebooks into one HTML report at ``target`` (see the module docstring); ``None`` when no
    notebook ran. ``error`` (the failed stage, cell and exception) puts a failure banner at the top."""
    paths = [p for p in notebooks if p.is_file()]
    if not paths:
        return None
    merged = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    first: list[Any] = []  # cells tagged "verdict" open the report, whichever notebook holds them
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)  # type: ignore[no-untyped-call]
        for cell in nb.cells:
            tags = cell.get("metadata", {}).get("tags", [])
            if "parameters" not in tags and "injected-parameters" not in tags:
                (first if "verdict" in tags else merged.cells).append(cell)
        merged.metadata = merged.metadata or nb.metadata
    merged.cells[:0] = first
    if error is not None:
        merged.cells.insert(0, _banner(error))
    merged.metadata["title"] = title
    exporter = HTMLExporter(  # type: ignore[no-untyped-call]
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(merged)
    target.write_text(body, encoding="utf-8")
    return target


def _banner(error: str) -> Any:
    """A Markdown cell that says the run failed, where, and why."""
    text = (
        '<div style="background:#f8d7da;border:1px solid #d33;padding:0.6em">'
        f"<b>This run failed</b>: {html.escape(error)}. What ran before the failure follows; the stage's "
        "notebook in the run folder holds the traceback.</div>"
    )
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": [FAILURE_TAG]})  # type: ignore[no-untyped-call]
