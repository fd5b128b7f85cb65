"""The playbook: design, exercise and judge integrations of every kind, in the user's own project.

``project`` (where a project's specs, scenarios and runs live), ``kinds`` (one subpackage per kind of integration
and the table of them), ``verdict`` (checks, findings, JUnit), ``run`` (the stage notebooks, run folders, the
report), ``tune`` (policy search in the simulator) and ``cli`` (the ``integration-kit`` command). The only layer
that imports pandas, matplotlib, papermill or optuna.
"""

__all__: list[str] = []
