"""Errors name what the user wrote: a wrong value at any depth of a spec or scenario is a ConfigurationError
naming the file and the field's path as written (``retry.retry_on_status[0]``), never a TypeError, ValueError or
AttributeError, and never blamed on another field.

The regression tests are the examples found from outside; the hypothesis test corrupts one value, at any depth,
of every bundled spec (each kind: HTTP, webhook-in, webhook-out, queue) and scenario with a wrong type.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration_kit import ClientConfig
from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.grpc.spec import GrpcSpec
from integration_kit.playbook.kinds.http.spec import IntegrationSpec, load_integration
from integration_kit.playbook.kinds.queue.spec import QueueSpec
from integration_kit.playbook.kinds.table import load_spec
from integration_kit.playbook.kinds.webhook.spec import WebhookSpec
from integration_kit.playbook.kinds.websocket.spec import WebSocketSpec
from integration_kit.sim.scenarios import Scenario

DATA = Path(__file__).resolve().parents[2] / "data"
SOURCE = "fuzz.toml"

MINIMAL = """\
name = "partner"
description = "a partner"
base_url = "https://api.partner.example"
scenarios = ["steady"]
"""


# -- the examples found from outside ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("retry = { retry_on_status = [[500]] }", "retry.retry_on_status[0]"),  # was TypeError: unhashable type
        ('auth = { type = ["bearer"] }', "auth.type"),  # was blamed on base_url
        ("user_agent = 5", "user_agent"),  # was reported as headers['User-Agent']
    ],
)
def test_the_examples_name_the_field_as_written(tmp_path: Path, line: str, field: str) -> None:
    path = tmp_path / "partner.toml"
    path.write_text(MINIMAL + line + "\n")
    with pytest.raises(ConfigurationError) as caught:
        load_integration(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {field}: "), message
    assert caught.value.field == field
    assert "base_url" not in message
    assert "User-Agent" not in message


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"retry": {"retry_on_status": [[500]]}}, "retry.retry_on_status[0]"),
        ({"breaker": {"ignore_statuses": [429, {"x": 1}]}}, "breaker.ignore_statuses[1]"),
        ({"auth": {"type": ["bearer"]}}, "auth.type"),
        ({"auth": {"type": "bearer", "env": ["TOKEN"]}}, "auth.env"),
        ({"auth": {"type": "header", "env": "TOKEN"}}, "auth.header"),
        ({"user_agent": 5}, "user_agent"),
        ({"headers": {"X-Trace": 5}}, "headers.X-Trace"),
        ({"timeouts": {"read": [1]}}, "timeouts.read"),
        ({"idempotency_methods": ["POST", 5]}, "idempotency_methods[1]"),
        ({"limits": {"rate": math.nan}}, "limits.rate"),
    ],
)
def test_client_config_errors_carry_the_field_as_written(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_mapping({"name": "partner", "base_url": "https://api.partner.example", **values})
    assert caught.value.field == field


# -- any spec, any depth, any wrong type --------------------------------------------------------------------------


#: Each kind's loader (as ``load_spec`` dispatches on the file's ``kind``), by the kind of the file before it
#: was corrupted: a corrupted ``kind`` is then the loader's to refuse.
LOADERS: dict[str, Callable[..., object]] = {
    "http": IntegrationSpec.from_mapping,
    "queue": QueueSpec.from_mapping,
    "webhook-in": WebhookSpec.from_mapping,
    "webhook-out": WebhookSpec.from_mapping,
    "grpc": GrpcSpec.from_mapping,
    "websocket": WebSocketSpec.from_mapping,
}


def _spec_files() -> list[Path]:
    return sorted((DATA / "integrations").glob("*.toml"))


#: An HTTP spec with the settings no bundled spec uses (headers, user agent, basic auth, a count breaker, the
#: budget off, tune choices) and an inline scenario with every latency kind, ramps and a capacity.
EVERY_FIELD = """\
name = "every-field"
description = "every setting a spec can hold"
base_url = "https://api.partner.example/v1"
deadline = 12.5
user_agent = "orders/1.0"
headers = { X-Client = "orders" }
idempotency_methods = ["POST", "PATCH"]
redact_query_params = ["session"]
max_response_bytes = 65536
follow_redirects = false
verify = true
allow_insecure_http = false
budget = false
scenarios = ["steady"]
auth = { type = "basic", username_env = "PARTNER_USER", password_env = "PARTNER_PASSWORD" }
timeouts = 2.5
retry = { max_attempts = 3, jitter = "equal", retry_on_status = [502, 503], max_retry_after = 5.0 }
breaker = { failure_threshold = 5, failure_rate_threshold = 0.5, ignore_statuses = [429], slow_call_duration = 2.0 }
limits = { max_concurrent = 8, rate = 20.0, burst = 5, max_wait = 0.5 }
objectives = { success_rate = 0.9, p99_latency = 4.0 }
scenario_objectives = { odd = { amplification = 1.5 } }
tune = { retry = { max_attempts = [2, 4], jitter = ["full", "equal"] }, breaker = { ignore_statuses = [[429]] } }
fallback = { kind = "static", description = "a canned answer" }
exercise = { method = "POST", path = "/orders", rate = 0, workers = 4, duration = 30.0 }

[[scenario]]
name = "odd"
description = "every latency kind"
capacity = { rate = 50, concurrency = 10, queue = 100 }

[[scenario.phases]]
name = "uniform"
duration = 10
latency = { kind = "uniform", low = 0.01, high = 0.2 }
errors = { 429 = 0.1, retry_after = 2, refused = 0.01, reset = 0.01 }

[[scenario.phases]]
duration = 10
ramp = 5
latency = { kind = "empirical", samples = [0.01, 0.02, 0.5] }
capacity = { rate = 10 }

[[scenario.phases]]
duration = 5
latency = 0.05
"""


def _bundled() -> list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], object]]]:
    found: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], object]]] = [
        ("every-field", tomllib.loads(EVERY_FIELD), lambda d: IntegrationSpec.from_mapping(d, source=SOURCE))
    ]
    for path in _spec_files():
        data = tomllib.loads(path.read_text())
        loader = LOADERS[data.get("kind", "http")]
        found.append((path.name, data, lambda d, loader=loader: loader(d, source=SOURCE)))
    for path in sorted((DATA / "scenarios").glob("*.toml")):
        found.append((path.name, tomllib.loads(path.read_text()), lambda d: Scenario.from_mapping(d, source=SOURCE)))
    return found


BUNDLED = _bundled()


def _paths(value: object, prefix: str = "") -> Iterator[str]:
    """Every place in parsed TOML, as the user would name it: ``retry.max_attempts``, ``scenario[0].phases[1]``."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from _paths(item, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            path = f"{prefix}[{index}]"
            yield path
            yield from _paths(item, path)


_STEP = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _steps(path: str) -> list[int | str]:
    return [int(index) if index else key for index, key in _STEP.findall(path)]


def _get(data: Any, path: str) -> Any:
    for step in _steps(path):
        data = data[step]
    return data


def _set(data: Any, path: str, value: object) -> None:
    *parents, last = _steps(path)
    for step in parents:
        data = data[step]
    data[last] = value


WRONG = st.one_of(
    st.lists(st.integers(-5, 600), min_size=1, max_size=3),  # a list where a scalar goes
    st.lists(st.lists(st.integers(0, 600), max_size=2), min_size=1, max_size=2),  # nested lists: [[500]]
    st.dictionaries(st.sampled_from(["x", "kind", "name", "type"]), st.integers(), min_size=1, max_size=2),
    st.text(max_size=6),  # a string where a number, a table or a list goes
    st.sampled_from([None, "", [], {}, 0, False, True]),  # None-like
    st.sampled_from([10**30, -(10**30), 1e308, math.nan, math.inf, -math.inf]),  # huge numbers and NaN
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_wrong_value_anywhere_is_a_configuration_error_naming_its_path(data: st.DataObject) -> None:
    name, original, load = data.draw(st.sampled_from(BUNDLED), label="file")
    path = data.draw(st.sampled_from(list(_paths(original))), label="path")
    wrong = data.draw(WRONG, label="value")
    if isinstance(wrong, str) and isinstance(_get(original, path), str):
        return  # another string where a string goes is not a wrong type
    corrupted = copy.deepcopy(original)
    _set(corrupted, path, wrong)
    try:
        load(corrupted)
    except ConfigurationError as exc:
        message = str(exc)
        assert message.startswith(f"{SOURCE}: "), message  # names the file
        named = re.search(rf"(?<![\w.\[]){re.escape(path)}(?![\w\[])", message)
        key = re.sub(r"\[\d+\]", "", path).rsplit(".", 1)[-1]
        # A check across fields (max_delay >= base_delay, start < end) names the field it checks and this one.
        assert named or re.search(rf"\b{re.escape(key)}\b", message), f"{name}: {path} = {wrong!r}: {message}"
    # anything else (TypeError, AttributeError, a bare ValueError) fails the test as it is


def test_the_fuzz_reaches_every_kind_of_spec_and_each_file_loads_as_it_is() -> None:
    kinds = {tomllib.loads(path.read_text()).get("kind", "http") for path in _spec_files()}
    assert kinds == set(LOADERS)
    for path in _spec_files():
        load_spec(path)
    for name, data, load in BUNDLED:
        assert load(copy.deepcopy(data)) is not None, name


def test_a_field_path_grows_outward_as_loaders_add_their_keys() -> None:
    error = ConfigurationError("RetryPolicy.retry_on_status must hold HTTP statuses", field="retry_on_status[0]")
    assert error.under("retry").field == "retry.retry_on_status[0]"
    assert error.under("retry").message == error.message  # the message is the loader's to frame
    assert ConfigurationError("bad", field="[2]").under("down").field == "down[2]"
    assert ConfigurationError("no single field").under("breaker").field == "breaker"
    assert ConfigurationError("auth.type: must be one of", field="auth.type").reason == "must be one of"
