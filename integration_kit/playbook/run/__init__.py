"""Running the playbook: the stage notebooks into a run folder, the report, progress and old runs."""

from integration_kit.playbook.run.runner import PlaybookRun, run_playbook

__all__ = ["PlaybookRun", "run_playbook"]
