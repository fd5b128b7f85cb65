"""MkDocs hooks: bring the guide notebooks and the scoreboard's charts into the site, and render the scoreboard.

The notebooks stay in ``notebooks/guides`` (where JupyterLab and nbval find them) and the scoreboard's result in
``bench/results``; this hook adds them to the site's files instead of copying them into ``docs/``. Everything is
read from the working tree: no network at build time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
GUIDES = ROOT / "notebooks" / "guides"
RESULTS = ROOT / "bench" / "results"
MARKER = "<!-- scoreboard -->"


@event_priority(100)  # before mkdocs-jupyter turns notebook files into pages
def on_files(files: Files, config: Any) -> Files:
    for notebook in sorted(GUIDES.glob("*.ipynb")):
        # a File rooted at notebooks/ rather than File.generated: mkdocs-jupyter reads the path from src_dir
        files.append(
            File(
                f"guides/{notebook.name}",
                src_dir=str(GUIDES.parent),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    for chart in sorted(RESULTS.glob("scoreboard-*.png")):
        files.append(File.generated(config, f"figures/{chart.name}", abs_src_path=str(chart)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if MARKER not in markdown:
        return markdown
    from integration_kit.research.scoreboard import RESULT, load_result, markdown_report

    if not RESULT.is_file():
        return markdown.replace(MARKER, "*No result yet: run the scoreboard, commit `bench/results/scoreboard.json`.*")
    return markdown.replace(MARKER, markdown_report(load_result(), charts="figures"))
