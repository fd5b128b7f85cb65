"""The public surface is explicit, sorted, importable and documented."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import integration_kit

CONTRACT = {
    # foundation issue
    "BreakerPolicy",
    "BudgetPolicy",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "IntegrationError",
    "ManualClock",
    "RetryBudget",
    "RetryPolicy",
    "SystemClock",
    "Timeouts",
    "parse_retry_after",
    # clients issue
    "AsyncResilientClient",
    "BasicAuth",
    "BearerAuth",
    "ClientConfig",
    "HeaderAuth",
    "Recorder",
    "ResilientClient",
    "resilient",
}


def test_all_is_sorted_and_exported() -> None:
    names = integration_kit.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(integration_kit, name), name


def test_contract_names_are_public() -> None:
    assert set(integration_kit.__all__) >= CONTRACT


def test_every_module_has_a_sorted_all_and_docstrings() -> None:
    for info in pkgutil.walk_packages(integration_kit.__path__, "integration_kit."):
        module = importlib.import_module(info.name)
        assert module.__doc__, info.name
        public = getattr(module, "__all__", None)
        assert public is not None, f"{info.name} has no __all__"
        for name in public:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert getattr(obj, "__doc__", None), f"{info.name}.{name} has no docstring"


def test_importing_the_package_does_not_import_heavy_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys, integration_kit\n"
        "heavy = {'pandas', 'matplotlib', 'papermill', 'redis', 'numpy'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
