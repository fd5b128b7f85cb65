"""The redaction helpers, exactly: every form of a secret is masked, nothing else is changed (issue 29's sweep).

Pure logic, so plain inputs and outputs; the client-level proofs (a real server echoing the credential, httpx's
and httpcore's real log records) are in test_client_config.py, test_io_guarantees.py and test_hardening.py.
"""

from __future__ import annotations

import base64
import logging
import pickle
from urllib.parse import quote, quote_plus

import pytest

from integration_kit.http.redact import (
    _HTTP_LOGGERS,
    MASK,
    MIN_SECRET_FORM,
    Secret,
    _HttpLogRedactor,
    redact_headers,
    redact_http_logs,
    redact_log_message,
    redact_text,
    redact_url,
    secret_forms,
)


def test_a_secret_names_the_wrong_type_and_refuses_pickling() -> None:
    with pytest.raises(TypeError, match="Secret: expected a str, got int"):
        Secret(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^a Secret cannot be pickled$"):
        pickle.dumps(Secret("s3cret-value"))


def test_a_query_value_holding_an_equals_sign_is_masked_whole() -> None:
    assert redact_url("https://h.example/p?token=ab=cd&page=2") == f"https://h.example/p?token={MASK}&page=2"


@pytest.mark.parametrize("name", ["X-Client-Secret", "X-DB-Password", "X-Refresh-Token"])
def test_headers_named_like_a_secret_are_masked(name: str) -> None:
    assert redact_headers({name: "v", "Accept": "json"}) == {name: MASK, "Accept": "json"}


def test_the_longest_secret_is_masked_first_whatever_its_letters() -> None:
    # Sorted by letters, "zz" would come first and leave "aa" + "aa" of the longer secret in the text.
    assert redact_text("x aazzaa y", ["zz", "aazzaa"]) == f"x {MASK} y"


def _forms_of(core: str) -> set[str]:
    escaped = core.replace("\\", "\\\\").replace('"', '\\"')
    b64 = base64.b64encode(core.encode()).decode("ascii")
    return {core, quote(core, safe=""), quote_plus(core), b64, escaped}


def test_a_plain_string_secret_has_its_own_forms() -> None:
    assert set(secret_forms("t0k en/value")) == {f for f in _forms_of("t0k en/value") if len(f) >= MIN_SECRET_FORM}
    assert "t0k%20en%2Fvalue" in secret_forms("t0k en/value")  # percent-encoded, the slash too


def test_a_short_secret_is_still_masked_itself_and_forms_at_the_minimum_are_kept() -> None:
    assert secret_forms("abc") == ("abc",)
    assert "abcdef" in secret_forms("Bearer abcdef")  # exactly MIN_SECRET_FORM characters


def test_the_token_after_the_scheme_is_split_at_the_first_space() -> None:
    forms = secret_forms("Bearer tok en-123456")
    assert "tok en-123456" in forms
    assert "tok%20en-123456" in forms


def test_basic_credentials_give_the_pair_and_the_password_after_the_first_colon() -> None:
    token = base64.b64encode(b"user:pa:ssword1").decode()
    forms = secret_forms(f"Basic {token}")
    assert {"user:pa:ssword1", "pa:ssword1", token, f"Basic {token}"} <= set(forms)


def test_basic_without_a_password_still_masks_every_other_form() -> None:
    token = base64.b64encode(b"username-only").decode()
    forms = set(secret_forms(f"Basic {token}"))
    assert {f"Basic {token}", token, "username-only"} <= forms
    assert "" not in forms


def test_basic_with_a_token_that_is_not_base64_adds_no_decoded_form() -> None:
    plain = "Basic %%%%%%"
    expected = {f for core in (plain, "%%%%%%") for f in _forms_of(core) if f == plain or len(f) >= MIN_SECRET_FORM}
    assert set(secret_forms(plain)) == expected


def test_a_json_escaped_echo_is_a_form() -> None:
    assert 'ab\\\\cd\\"ef' in secret_forms('ab\\cd"ef')


def test_forms_come_longest_first() -> None:
    forms = secret_forms("Bearer zzzzzz-aaaaaaaaaaaa")
    lengths = [len(f) for f in forms]
    assert lengths == sorted(lengths, reverse=True)
    assert len(set(lengths)) > 2


def test_a_log_line_has_credential_headers_masked_in_place_and_the_rest_kept_byte_for_byte() -> None:
    line = (
        "headers=[(b'Authorization', b'Bearer xyz'), (b'Accept', b'json'), (b'X-Cred', b'v1'), (b'X-My-Token', b't')]"
    )
    assert redact_log_message(line, extra_headers=["x-cred"]) == (
        "headers=[(b'Authorization', b'***'), (b'Accept', b'json'), (b'X-Cred', b'***'), (b'X-My-Token', b'***')]"
    )
    assert redact_log_message("[('X-Secret-Thing', 'v'), ('X-Password-2', 'v')]") == (
        "[('X-Secret-Thing', '***'), ('X-Password-2', '***')]"
    )
    assert redact_log_message("(b'X-Upper', b'v')", extra_headers=["X-UPPER"]) == "(b'X-Upper', b'***')"


def test_a_log_line_has_secret_query_values_masked_and_other_parameters_kept() -> None:
    line = 'HTTP Request: GET https://h.example/p?page=2&token=abc&zone=eu "HTTP/1.1 200 OK"'
    assert redact_log_message(line, extra_names=["ZONE"]) == (
        'HTTP Request: GET https://h.example/p?page=2&token=***&zone=*** "HTTP/1.1 200 OK"'
    )


def test_the_log_filter_keeps_every_record_and_masks_what_it_was_given() -> None:
    redactor = _HttpLogRedactor()
    redactor.install(names=["zone"], secrets=["s3cret-value"], headers=["X-Cred"])
    try:
        record = logging.LogRecord(
            "httpx",
            logging.INFO,
            __file__,
            1,
            "GET %s %s %s",
            ("https://h/?zone=1", "s3cret-value", "(b'X-Cred', b'v')"),
            None,
        )
        assert redactor.filter(record) is True
        assert record.getMessage() == f"GET https://h/?zone={MASK} {MASK} (b'X-Cred', b'{MASK}')"
        assert all(redactor in logging.getLogger(name).filters for name in _HTTP_LOGGERS)
    finally:
        for name in _HTTP_LOGGERS:
            logging.getLogger(name).removeFilter(redactor)


def test_an_empty_secret_masks_nothing() -> None:
    assert redact_text("abc", ["", "zz"]) == "abc"


def test_a_record_that_cannot_be_formatted_is_kept_as_it_is() -> None:
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "%d requests", ("many",), None)
    assert _HttpLogRedactor().filter(record) is True
    assert record.msg == "%d requests"


def test_redact_http_logs_masks_names_secrets_and_headers_in_httpx_records(caplog: pytest.LogCaptureFixture) -> None:
    redact_http_logs(names=["qqzqparam"], secrets=["qqzq-secret-value"], headers=["X-Qqzq"])
    with caplog.at_level(logging.INFO, logger="httpx"):
        logging.getLogger("httpx").info(
            "GET %s echoed %s with %s", "https://h/?qqzqparam=1", "qqzq-secret-value", "(b'X-Qqzq', b'v')"
        )
    assert caplog.messages[-1] == f"GET https://h/?qqzqparam={MASK} echoed {MASK} with (b'X-Qqzq', b'{MASK}')"
