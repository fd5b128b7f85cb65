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
        "grpc_pushback_at_the_int32_bound_refused",
        "grpc/status.py",
        "if not _DIGITS.fullmatch(text) or int(text) > MAX_PUSHBACK_MS:",
        "if not _DIGITS.fullmatch(text) or int(text) >= MAX_PUSHBACK_MS:",
        ("tests/grpc/test_status_exact.py::test_each_form_of_pushback",),
    ),
    Mutant(
        "grpc_throttling_of_1000_tokens_refused",
        "grpc/config.py",
        "    if values[0] > 1000:\n",
        "    if values[0] >= 1000:\n",
        ("tests/grpc/test_grpc_config_exact.py::test_the_bounds_themselves_are_accepted",),
    ),
    Mutant(
        "grpc_second_scheme_separator_hides_a_remote_host",
        "grpc/security.py",
        'rest = target.split(":///", 1)[-1] if ":///" in target else target',
        'rest = target.split(":///")[-1] if ":///" in target else target',
        ("tests/grpc/test_security_exact.py::test_only_the_first_scheme_separator_is_taken_off",),
    ),
    Mutant(
        "websocket_reconnect_decision_ignores_the_users_close_codes",
        "websocket/reconnect.py",
        "    verdict = classify_close(code, policy.close_codes)\n",
        "    verdict = classify_close(code)\n",
        ("tests/websocket/test_reconnect_exact.py::test_a_stop_is_exact",),
    ),
    Mutant(
        "websocket_sequence_start_ignored",
        "websocket/sequence.py",
        "        self.last = start\n",
        "        self.last = None\n",
        ("tests/websocket/test_sequence_exact.py::test_the_first_number_is_judged_against_a_known_start",),
    ),
    Mutant(
        "hedge_sent_with_no_time_left",
        "policies/hedging.py",
        "if (left is not None and left <= 0) or (self.launched > 0 and not self._allowed()):",
        "if (left is not None and left < 0) or (self.launched > 0 and not self._allowed()):",
        (
            "tests/grpc/test_hedge_race_exact.py::"
            "test_each_copy_gets_what_is_left_of_the_attempt_and_none_goes_at_the_limit",
        ),
    ),
    Mutant(
        "profile_name_not_checked_for_a_string",
        "policies/profiles.py",
        "    profile = PROFILES.get(name) if isinstance(name, str) else None\n",
        "    profile = PROFILES.get(name)\n",
        ("tests/policies/test_profiles_exact.py",),
    ),
    Mutant(
        "grpc_deadline_error_loses_the_attempt_history",
        "grpc/rpc.py",
        "late.with_context(integration=error.integration, method=error.method, url=error.url, attempts=error.attempts)",
        "late.with_context(integration=error.integration, method=error.method, url=error.url)",
        ("tests/grpc/test_rpc_exact.py::test_an_attempts_deadline_exceeded_is_the_calls_deadline",),
    ),
    Mutant(
        "inbox_claim_renewal_cancelled_at_the_store",
        "queues/inbox.py",
        "            self.busy = True\n",
        "            self.busy = None\n",
        (
            "tests/queues/test_queue_store_inbox.py::"
            "test_a_handler_finishing_during_a_renewal_completes_with_the_renewed_claim",
        ),
    ),
    Mutant(
        "webhook_inbox_purge_forgets_the_dedup_window",
        "server/inbox.py",
        "(self.clock.now() - self.dedup_window,),",
        "(self.clock.now() + self.dedup_window,),",
        ("tests/server/test_sqlite_inbox.py::test_the_purge_keeps_the_window_and_unfinished_events",),
    ),
    Mutant(
        "webhook_receiver_ignores_the_lifespan",
        "server/webhook_receiver.py",
        'if scope["type"] == "lifespan":',
        'if scope["type"] == "lifespan.startup":',
        ("tests/server/test_webhook_receiver_paths.py::test_the_lifespan_is_answered_and_other_scopes_are_ignored",),
    ),
    Mutant(
        "webhook_processor_spins_on_an_idle_inbox",
        "server/webhook_processor.py",
        "            if not busy:\n",
        "            if busy:\n",
        (
            "tests/server/test_webhook_processor_paths.py::"
            "test_the_loop_takes_batches_of_a_hundred_and_waits_its_poll_when_idle",
        ),
    ),
    Mutant(
        "webhook_schedule_jitter_of_one_accepted",
        "webhooks/schedule.py",
        "if not 0 <= self.jitter < 1:",
        "if not 0 <= self.jitter <= 1:",
        ("tests/webhooks/test_schedule.py::test_jitter_must_be_a_fraction_below_one",),
    ),
    Mutant(
        "claimed_webhook_delivery_loses_its_event_type",
        "webhooks/delivery_store.py",
        "return [DueDelivery(r[0], r[1], r[2], bytes(r[3]), r[4], r[5]) for r in rows]",
        "return [DueDelivery(r[0], r[1], None, bytes(r[3]), r[4], r[5]) for r in rows]",
        ("tests/webhooks/test_sqlite_delivery_store.py::test_enqueue_writes_the_message_and_due_deliveries",),
    ),
    Mutant(
        "outbox_keyed_message_with_an_empty_body_never_claimed",
        "queues/outbox.py",
        "keys = sorted({r[1] for r in rows if r[1]})\n                    unsent: list[tuple[int, str]] = []",
        "keys = sorted({r[1] for r in rows if r[2]})\n                    unsent: list[tuple[int, str]] = []",
        ("tests/queues/test_queue_sqlite_outbox.py::test_a_keyed_message_with_an_empty_body_is_claimed",),
    ),
    Mutant(
        "redis_inbox_finish_without_error_writes_one",
        "server/redis_inbox.py",
        'self._finish(keys=keys, args=[event_id, state.value, error or ""])',
        'self._finish(keys=keys, args=[event_id, state.value, error or "XXXX"])',
        ("tests/server/test_redis_inbox.py::test_finish_sets_and_clears_the_error",),
    ),
    Mutant(
        "postgres_claim_reports_the_due_time_as_created_at",
        "webhooks/postgres_store.py",
        "return [DueDelivery(r[0], r[1], r[2], bytes(r[3]), r[4], r[5]) for r in rows]",
        "return [DueDelivery(r[0], r[1], r[2], bytes(r[3]), r[4], r[6]) for r in rows]",
        ("tests/webhooks/test_postgres_store.py::test_claim_edges_order_limit_and_fields",),
    ),
    Mutant(
        "consumer_reason_of_a_bare_error_gets_a_colon",
        "queues/consumer.py",
        '    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__\n',
        '    return f"{type(exc).__name__}: {text}"\n',
        ("tests/queues/test_queue_consumer_events.py::test_retry_and_dead_letter_reasons_and_the_ack_duration",),
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
    Mutant(
        "grpc_core_retries_left_on_beside_the_kit_s",
        "grpc/core.py",
        'any(k == "grpc.enable_retries" for k, _ in options)',
        'any(k == "grpc.enable_retry" for k, _ in options)',
        (
            "tests/grpc/test_grpc_core_exact.py::"
            "test_grpc_core_retries_are_off_and_grpcio_reads_the_same_service_config",
        ),
    ),
    Mutant(
        "sync_refused_stream_resent_a_fifth_time",
        "grpc/sync.py",
        "for _ in range(MAX_TRANSPARENT + 1):",
        "for _ in range(MAX_TRANSPARENT + 2):",
        (
            "tests/grpc/test_grpc_sync_exact.py::"
            "test_a_refused_stream_is_resent_at_most_three_times_then_is_the_attempts_end",
        ),
    ),
    Mutant(
        "websocket_user_close_taken_for_a_lost_connection",
        "websocket/client.py",
        "self._closing = True",
        "self._closing = False",
        (
            "tests/websocket/test_ws_client_exact.py::"
            "test_a_reader_waiting_when_the_user_closes_ends_without_reconnecting",
        ),
    ),
    Mutant(
        "async_server_stream_sent_without_its_deadline",
        "grpc/channel.py",
        "call = self._inner(request, timeout=rpc.timeout(action), metadata=rpc.attempt_metadata(action), **kwargs)",
        "call = self._inner(request, timeout=None, metadata=rpc.attempt_metadata(action), **kwargs)",
        ("tests/grpc/test_channel_exact.py::test_a_server_stream_yields_every_message_after_the_commit",),
    ),
    Mutant(
        "hedges_sent_without_asking_the_retry_budget",
        "grpc/hedging.py",
        "race = HedgeRace(policy.race, started=clock.now(), timeout=action.timeout, budget=budget)",
        "race = HedgeRace(policy.race, started=clock.now(), timeout=action.timeout, budget=None)",
        ("tests/grpc/test_hedging_exact.py::test_every_hedge_asks_the_budget",),
    ),
    Mutant(
        "webhook_endpoint_failing_exactly_disable_after_kept",
        "webhooks/sender.py",
        "now - failing_since >= self.schedule.disable_after",
        "now - failing_since > self.schedule.disable_after",
        (
            "tests/webhooks/test_webhook_sender_exact.py::"
            "test_failing_for_exactly_disable_after_disables_with_the_attempt_s_status_and_error",
        ),
    ),
    Mutant(
        "guarded_app_cut_off_from_the_client_after_its_body",
        "server/middleware.py",
        "await self._execute(scope, receive, send, body, begun)",
        "await self._execute(scope, None, send, body, begun)",
        ("tests/server/test_middleware_exact.py::test_the_app_gets_the_body_once_then_what_the_client_sends_next",),
    ),
    Mutant(
        "idempotency_key_set_again_on_every_attempt",
        "http/exchange.py",
        "self.key_sent = True",
        "self.key_sent = None",
        ("tests/http/test_exchange_exact.py::test_the_key_is_set_once_as_a_structured_string",),
    ),
    Mutant(
        "client_jitter_rng_dropped",
        "http/client.py",
        "rng=rng,",
        "rng=None,",
        ("tests/http/test_client_init_exact.py::test_the_engine_gets_every_policy_of_the_config",),
    ),
    Mutant(
        "reported_breaker_transitions_reset_to_none",
        "telemetry/otel.py",
        "self._pending.set(())",
        "self._pending.set(None)",
        (
            "tests/telemetry/test_telemetry_otel_exact.py::"
            "test_a_breaker_transition_is_an_event_of_the_next_call_and_its_state_on_the_attempt",
        ),
    ),
    Mutant(
        "consumer_lets_a_second_probe_through_a_half_open_breaker",
        "queues/consumer.py",
        "return 1 if not self._in_flight else 0  # one message as the probe",
        "return 1 if not self._in_flight else 1  # one message as the probe",
        ("tests/queues/test_queue_consumer_exact.py::test_a_half_open_breaker_lets_one_probe_through_at_a_time",),
    ),
    Mutant(
        "verification_error_forgets_the_header_at_fault",
        "server/errors.py",
        "self.header = header",
        "self.header = None",
        (
            "tests/server/test_server_errors_exact.py::"
            "test_a_verification_error_prefixes_its_scheme_and_keeps_scheme_header_and_context",
        ),
    ),
    Mutant(
        "unsafe_destination_drops_the_call_context",
        "webhooks/errors.py",
        "super().__init__(message, **context)  # type: ignore[arg-type]\n        self.host = host",
        "super().__init__(message)  # type: ignore[arg-type]\n        self.host = host",
        (
            "tests/webhooks/test_webhook_errors_exact.py::test_unsafe_destination_keeps_host_address_message_and_context",
        ),
    ),
    Mutant(
        "handshake_measures_a_missing_date_from_a_naive_local_now",
        "websocket/handshake.py",
        "return datetime.now(UTC)",
        "return datetime.now(None)",
        ("tests/websocket/test_ws_handshake_exact.py::test_now_is_taken_in_utc_on_a_host_in_another_zone",),
    ),
    Mutant(
        "resync_returns_its_messages_as_spaced_json",
        "websocket/resync.py",
        'separators=(",", ":")',
        "separators=None",
        ("tests/websocket/test_ws_resync_exact.py::test_the_missing_range_is_asked_for_and_returned_as_compact_json",),
    ),
    Mutant(
        "config_refusal_shows_the_users_secret_query_values",
        "websocket/config.py",
        "_check_url(self.url, self.allow_insecure, self.secret_query_params)",
        "_check_url(self.url, self.allow_insecure, ())",
        ("tests/websocket/test_ws_config_exact.py::test_a_refused_url_masks_the_users_own_secret_query_params",),
    ),
    Mutant(
        "shopify_full_bucket_reads_one_left",
        "policies/signals.py",
        'return Quota("shopify", size, max(0, size - used), None)',
        'return Quota("shopify", size, max(1, size - used), None)',
        ("tests/policies/test_signals_headers_exact.py::test_shopify_call_limits",),
    ),
    Mutant(
        "failed_health_check_outcome_without_its_status",
        "grpc/health.py",
        "status=error.status, error=error)",
        "status=None, error=error)",
        ("tests/grpc/test_health_exact.py::test_any_other_status_fails_the_probe",),
    ),
    Mutant(
        "replay_reads_a_reiterable_source_afresh_on_the_async_path",
        "grpc/replay.py",
        "_aiter(source if self._sync is None else self._sync)",
        "_aiter(source)",
        ("tests/grpc/test_replay_exact.py::test_a_reiterable_source_is_read_once_whichever_path_reads_it",),
    ),
    Mutant(
        "websocket_stream_closed_reports_one_unsent_by_default",
        "websocket/errors.py",
        "reason: str, unsent: int = 0,",
        "reason: str, unsent: int = 1,",
        ("tests/websocket/test_ws_errors_exact.py::test_stream_closed_without_unsent_reports_nothing_unsent",),
    ),
    Mutant(
        "grpcio_lost_stream_status_taken_for_a_permanent_internal",
        "grpc/status.py",
        "    if _lost_on_write(call, code):\n",
        "    if False:\n",
        ("tests/grpc/test_status_lost.py::test_grpcios_failed_write_is_a_lost_status_retried_as_unavailable",),
    ),
    Mutant(
        "socks_proxy_built_without_its_credentials",
        "http/transport.py",
        "return socks_proxy(proxy_url=url, proxy_auth=proxy.raw_auth, **shared)",
        "return socks_proxy(proxy_url=url, **shared)",
        ("tests/http/test_socks_proxy.py::test_a_sync_request_goes_through_the_proxy_with_its_credentials",),
    ),
]
