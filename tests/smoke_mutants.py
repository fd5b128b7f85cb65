"""The mutants of the smoke set (``test_mutation_smoke.py``): what one is, and those of the I/O layers.

Issue 29 added one per module swept, each one that survived once. The first three are the hand mutations that no
test caught (a read or write error after sending taken for "never sent", the error snippet cut before it is
masked, a recovered webhook endpoint still "failing since" its first failure); the SSRF one is the bypass found
from outside (an IPv4-mapped metadata address); the others survived the mutmut sweeps of that issue until a test
was written for them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    """``module`` with ``original`` replaced by ``mutated``, which ``tests`` must catch."""

    name: str
    module: str
    original: str
    mutated: str
    tests: tuple[str, ...]


IO_MUTANTS = [
    Mutant(
        "read_or_write_error_after_sending_taken_for_never_sent",
        "http/exchange.py",
        "(httpx.NetworkError, OutcomeKind.CONNECTION_LOST),",
        "(httpx.NetworkError, OutcomeKind.CONNECT_ERROR),",
        ("tests/http/test_io_guarantees.py::test_a_post_without_a_key_the_partner_may_have_acted_on_is_sent_once",),
    ),
    Mutant(
        "error_snippet_cut_before_masking",
        "http/exchange.py",
        'redact_text(response.content[:SNIPPET_BYTES].decode("utf-8", "replace"), secrets)[:SNIPPET_CHARS]',
        'redact_text(response.content[:SNIPPET_BYTES].decode("utf-8", "replace")[:SNIPPET_CHARS], secrets)',
        ("tests/http/test_io_guarantees.py::test_a_token_echoed_across_the_snippet_cut_leaves_no_prefix",),
    ),
    Mutant(
        "recovered_webhook_endpoint_still_failing",
        "webhooks/sender.py",
        "        self._record(entry)\n        self.store.set_failing(endpoint.id, None)\n",
        "        self._record(entry)\n",
        ("tests/webhooks/test_webhook_recovery.py",),
    ),
    Mutant(
        "ssrf_address_checked_as_written",
        "webhooks/ssrf.py",
        "    ip = normalise_address(address)\n",
        "    ip = ipaddress.ip_address(address)\n",
        ("tests/webhooks/test_ssrf.py",),
    ),
    Mutant(
        "client_delete_drops_its_options",
        "http/client.py",
        'return self.request("DELETE", url, **options)',
        'return self.request("DELETE", url)',
        ("tests/http/test_client_surface.py::test_every_verb_passes_its_options_on",),
    ),
    Mutant(
        "renewed_idempotency_claim_never_lapses",
        "server/idempotency.py",
        "if self.store.compare_and_set(claim.key, claim.record, renewed, ttl=self.lease):",
        "if self.store.compare_and_set(claim.key, claim.record, renewed):",
        ("tests/server/test_idempotency_guard.py",),
    ),
    Mutant(
        "otel_http_instrumentation_not_suppressed",
        "telemetry/otel.py",
        'key: str | None = getattr(utils, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", None)',
        "key: str | None = None",
        ("tests/telemetry/test_telemetry_otel_more.py::test_http_instrumentation_is_suppressed_inside_an_attempt",),
    ),
    Mutant(
        "shorter_secret_masked_first",
        "http/redact.py",
        "    for plain in sorted(plains, key=len, reverse=True):\n",
        "    for plain in sorted(plains, reverse=True):\n",
        ("tests/http/test_redact.py::test_the_longest_secret_is_masked_first_whatever_its_letters",),
    ),
    Mutant(
        "idempotency_key_of_255_characters_refused",
        "http/safety.py",
        "    if len(key) > MAX_KEY_LENGTH:\n",
        "    if len(key) >= MAX_KEY_LENGTH:\n",
        ("tests/http/test_safety.py::test_a_key_is_refused_with_the_rule_or_its_length",),
    ),
    Mutant(
        "reset_at_the_epoch_threshold_read_as_epoch",
        "policies/signals.py",
        'epoch = form == "epoch" or (form == "auto" and value > EPOCH_THRESHOLD)',
        'epoch = form == "epoch" or (form == "auto" and value >= EPOCH_THRESHOLD)',
        ("tests/policies/test_signals_exact.py::test_reset_boundaries_epoch_threshold_and_zero",),
    ),
    Mutant(
        "basic_auth_credential_in_another_header",
        "http/auth.py",
        'return Credential("Authorization", Secret(f"Basic {token}"))',
        'return Credential("XXAuthorizationXX", Secret(f"Basic {token}"))',
        ("tests/http/test_auth.py::test_basic_auth_encodes_user_colon_password_in_utf8",),
    ),
    Mutant(
        "hmac_webhook_timestamp_not_signed",
        "server/signatures.py",
        'return f"{stamp}.".encode() + body if stamp is not None else body',
        "return body",
        ("tests/server/test_signatures_schemes.py::test_hmac_with_id_and_timestamp_headers",),
    ),
    Mutant(
        "idempotent_key_of_a_mapping_read_as_an_attribute",
        "server/keyed.py",
        "value = first[name] if isinstance(first, Mapping) else getattr(first, name)",
        "value = getattr(first, name)",
        ("tests/server/test_keyed.py::test_a_key_from_a_mapping_item_an_attribute_or_a_callable",),
    ),
    Mutant(
        "base_url_with_a_bare_user_name_accepted",
        "http/config.py",
        "elif parts.username is not None or parts.password is not None:",
        "elif parts.username is not None and parts.password is not None:",
        ("tests/http/test_config_exact.py::test_a_bad_base_url_is_shown_redacted",),
    ),
    Mutant(
        "quota_reported_by_a_refusal_not_paced",
        "http/exchange.py",
        "pacer.observe(hint.quota)",
        "pacer.observe(None)",
        ("tests/http/test_answered_errors.py::test_the_quota_a_refusal_reports_paces_the_next_call",),
    ),
    Mutant(
        "large_write_split_into_empty_pieces",
        "http/backend.py",
        "bytes(view[start : start + WRITE_PIECE])",
        "bytes(view[start : start - WRITE_PIECE])",
        ("tests/http/test_backend.py::test_a_large_write_goes_out_in_pieces_each_held",),
    ),
    Mutant(
        "httpx_transport_under_the_caller_s_trace_cut_as_a_pool_wait",
        "http/transport.py",
        'phase = _Phase(self._silence if "trace" not in request.extensions else "unknown")',
        "phase = _Phase(self._silence)",
        (
            "tests/http/test_transport_async.py::"
            "test_httpx_s_own_transport_under_the_caller_s_trace_is_in_an_unknown_phase",
        ),
    ),
    Mutant(
        "configured_user_agent_sent_beside_the_kit_s",
        "http/client.py",
        '"headers": {"User-Agent": user_agent, **config.headers},',
        '"headers": {"user-agent": user_agent, **config.headers},',
        ("tests/http/test_client_proxy.py::test_a_user_agent_among_the_configured_headers_replaces_the_kit_s",),
    ),
]
