"""The webhook layer's own errors (``integration_kit.webhooks.errors``) exactly (issue 29, the fifth sweep of
``webhooks/errors.py``): :class:`UnsafeDestination` and :class:`EndpointDisabled` keep their message (``str``,
``.message``, ``args``), their fields (``host``, ``address``; ``endpoint``, ``reason``) and the call context they
pass up to :class:`~integration_kit.errors.IntegrationError`; the receiver's classes re-exported here are the very
classes of :mod:`integration_kit.server.errors`; and the SSRF guard's refusals name the host and the refused
address, never the URL's credentials, path or query (where a webhook URL carries its token).

Pure construction and :func:`~integration_kit.webhooks.ssrf.resolve_destination` with a scripted resolver: the
whole file runs in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from integration_kit.errors import AttemptRecord, IntegrationError, UnsafeRequest
from integration_kit.server import errors as server_errors
from integration_kit.webhooks import errors as webhook_errors
from integration_kit.webhooks.errors import EndpointDisabled, UnsafeDestination, WebhookError
from integration_kit.webhooks.ssrf import resolve_destination

ATTEMPTS = (AttemptRecord(1, "error", None, 0.5), AttemptRecord(2, "error", None, 0.25))
CONTEXT = {"integration": "hooks", "method": "POST", "url": "https://hooks.example/in", "attempts": ATTEMPTS}
SUFFIX = " (POST https://hooks.example/in) after 2 attempts"


def _text(error: BaseException) -> str:
    """Everything a log line or a debugger shows of ``error``."""
    return " ".join((str(error), repr(error), repr(error.args), repr(vars(error))))


def test_unsafe_destination_keeps_host_address_message_and_context() -> None:
    error = UnsafeDestination("refused", host="hooks.example", address="10.0.0.1", **CONTEXT)  # type: ignore[arg-type]
    assert (error.host, error.address) == ("hooks.example", "10.0.0.1")
    assert error.message == "refused"
    assert error.args == ("refused",)
    assert str(error) == "[hooks] refused" + SUFFIX
    assert repr(error) == "UnsafeDestination('refused')"
    assert error.integration == "hooks"
    assert error.method == "POST"
    assert error.url == "https://hooks.example/in"
    assert error.attempts == ATTEMPTS
    bare = UnsafeDestination("bad url", host="")
    assert (bare.host, bare.address, str(bare)) == ("", None, "bad url")
    assert (bare.integration, bare.method, bare.url, bare.attempts) == (None, None, None, ())
    assert isinstance(error, WebhookError)
    assert isinstance(error, UnsafeRequest)
    assert isinstance(error, ValueError)


def test_endpoint_disabled_keeps_endpoint_reason_message_and_context() -> None:
    error = EndpointDisabled("stopped", endpoint="ep_1", reason="gone", **CONTEXT)  # type: ignore[arg-type]
    assert (error.endpoint, error.reason) == ("ep_1", "gone")
    assert error.message == "stopped"
    assert error.args == ("stopped",)
    assert str(error) == "[hooks] stopped" + SUFFIX
    assert repr(error) == "EndpointDisabled('stopped')"
    assert error.integration == "hooks"
    assert error.method == "POST"
    assert error.url == "https://hooks.example/in"
    assert error.attempts == ATTEMPTS
    bare = EndpointDisabled("stopped", endpoint="ep_2", reason="failing")
    assert (bare.endpoint, bare.reason, str(bare)) == ("ep_2", "failing", "stopped")
    assert (bare.integration, bare.method, bare.url, bare.attempts) == (None, None, None, ())
    assert isinstance(error, WebhookError)
    assert isinstance(error, IntegrationError)
    assert not isinstance(error, ValueError)


def test_the_receivers_errors_are_re_exported_as_the_same_classes() -> None:
    own = {"UnsafeDestination", "EndpointDisabled"}
    for name in webhook_errors.__all__:
        cls = getattr(webhook_errors, name)
        assert issubclass(cls, WebhookError), name
        if name not in own:
            assert cls is getattr(server_errors, name), name
    assert own <= set(webhook_errors.__all__)


def _resolver(*addresses: str):
    def resolve(host: str, port: int) -> Sequence[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    ("url", "addresses", "message", "host", "address"),
    [
        (
            "https://user:pa55w0rd-s3cret@hooks.example/in?token=t0ps3cr3t-t0ken",
            ("93.184.216.34",),
            "credentials in the URL are refused",
            "hooks.example",
            None,
        ),
        (
            "https://hooks.example/in/t0ps3cr3t-path?token=t0ps3cr3t-t0ken",
            ("127.0.0.1",),
            "hooks.example resolves to a refused address 127.0.0.1",
            "hooks.example",
            "127.0.0.1",
        ),
        (
            "https://hooks.example/in/t0ps3cr3t-path?token=t0ps3cr3t-t0ken",
            (),
            "the host name does not resolve",
            "hooks.example",
            None,
        ),
        (
            "ftp://hooks.example/in/t0ps3cr3t-path?token=t0ps3cr3t-t0ken",
            ("93.184.216.34",),
            "only http and https URLs with a host are allowed",
            "hooks.example",
            None,
        ),
    ],
    ids=["credentials", "refused-address", "no-address", "scheme"],
)
def test_a_refused_destination_names_host_and_address_never_the_urls_secrets(
    url: str, addresses: tuple[str, ...], message: str, host: str, address: str | None
) -> None:
    with pytest.raises(UnsafeDestination) as caught:
        resolve_destination(url, resolver=_resolver(*addresses))
    error = caught.value
    assert str(error) == message
    assert (error.host, error.address) == (host, address)
    text = _text(error)
    for secret in ("pa55w0rd-s3cret", "t0ps3cr3t-t0ken", "t0ps3cr3t-path", "user:"):
        assert secret not in text
