"""Tuning an HTTP integration's policies in the simulator (optuna), and writing the result back to its spec."""

from integration_kit.playbook.tune.study import TuneResult, pareto_chart, tune

__all__ = ["TuneResult", "pareto_chart", "tune"]
