"""The playbook: integration specs, design documents and checklists, charts, the notebook runner and the CLI.

The only layer that imports pandas, matplotlib or papermill (each lazily, inside the functions that need it).
"""

__all__: list[str] = []
