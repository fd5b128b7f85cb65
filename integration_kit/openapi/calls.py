"""Calling a partner's operations by ``operationId`` through a resilient client, validated against its document.

:class:`ValidatedCalls` (over a :class:`~integration_kit.http.client.ResilientClient`) and
:class:`AsyncValidatedCalls` (over an :class:`~integration_kit.http.client.AsyncResilientClient`) build the URL
from the operation's path template, check the request against the operation's parameters and body schema before
the client is asked for anything (:class:`~integration_kit.openapi.errors.InvalidRequest`: nothing is sent, no
attempt is recorded), and check a 2xx JSON answer against the schema documented for its status
(:class:`~integration_kit.openapi.errors.InvalidResponseBody`, a
:class:`~integration_kit.errors.InvalidResponse`). Validation is on for the whole wrapper by default
(``requests=``, ``responses=``) and any call may switch it with ``validate=``. The resilience (retries, keys,
breaker, deadline) is the client's, with one decision taken from the document: a write whose operation declares
no ``Idempotency-Key`` (and is not idempotent by its method) is made with ``retry=False`` unless the call says
otherwise, since a key the partner ignores would not stop a retried write from being applied twice.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from integration_kit.http.client import AsyncResilientClient, RequestOptions, ResilientClient
from integration_kit.http.redact import redact_url
from integration_kit.openapi.errors import InvalidRequest, InvalidResponseBody
from integration_kit.openapi.model import ApiDocument, Operation
from integration_kit.openapi.validation import OperationValidators
from integration_kit.policies.config import IDEMPOTENT_METHODS

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AsyncValidatedCalls", "ResponseCheck", "ValidatedCalls"]

#: What stands for the key the client generates (a UUID4) when the request is checked before it is built.
_GENERATED_KEY = "00000000-0000-4000-8000-000000000000"


_Client = TypeVar("_Client", ResilientClient, AsyncResilientClient)


class _CallsCore:
    """What the sync and async wrappers share: finding the operation, the URL, and both checks."""

    def __init__(
        self,
        document: ApiDocument,
        *,
        name: str,
        redact_names: frozenset[str] = frozenset(),
        keyed_methods: frozenset[str] = frozenset(),
        requests: bool = True,
        responses: bool = True,
        validators: OperationValidators | None = None,
    ) -> None:
        self.document = document
        self.validators = validators if validators is not None else OperationValidators(document)
        self.requests = requests
        self.responses = responses
        self._name = name
        self._redact = redact_names
        self._keyed = keyed_methods

    def _prepare(
        self,
        operation_id: str,
        path_params: Mapping[str, Any] | None,
        options: RequestOptions,
        validate: bool | None,
    ) -> tuple[Operation, str]:
        """The operation and the URL path; raises :class:`InvalidRequest` (before anything is sent) for a request
        that fails the document, or whose path parameters are missing."""
        operation = self.document.operation(operation_id)
        path_params = dict(path_params or {})
        if self.requests if validate is None else validate:
            headers = dict(options.get("headers") or {})
            key = options.get("idempotency_key")
            if key is not None or operation.method in self._keyed:  # the client sends one: given, or generated
                headers["Idempotency-Key"] = key if key is not None else _GENERATED_KEY
            violation = self.validators.check_request(
                operation,
                path_params=path_params,
                params=options.get("params") or {},
                headers=headers,
                body=options.get("json"),
            )
            if violation is not None:
                raise InvalidRequest(
                    f"the request to {operation_id} does not match the document: {violation}",
                    operation=operation_id,
                    path=violation.path,
                    rule=violation.rule,
                    integration=self._name,
                    method=operation.method,
                )
        url = operation.path
        for name, value in path_params.items():
            url = url.replace("{" + name + "}", quote(str(value), safe=""))
        if "{" in url:
            raise InvalidRequest(
                f"the request to {operation_id} lacks a path parameter of {operation.path}",
                operation=operation_id,
                path="/path",
                rule="required",
                integration=self._name,
                method=operation.method,
            )
        return operation, url

    def _check(self, operation: Operation, response: httpx.Response, validate: bool | None) -> httpx.Response:
        """``response`` when it matches the schema documented for its status; raises :class:`InvalidResponseBody`."""
        if not (self.responses if validate is None else validate):
            return response
        documented = operation.response_for(response.status_code)
        if documented is None or not documented.schema_pointer or not response.content:
            return response
        mime = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        problem = None
        if mime != "application/json" and not mime.endswith("+json"):
            problem = f"expected a JSON body, got content type {mime or 'none'!r}"
        else:
            try:
                body = jsonlib.loads(response.content)
            except (ValueError, RecursionError):
                problem = "malformed JSON in the response body"
            else:
                violation = self.validators.check_response(operation, response.status_code, body)
                problem = None if violation is None else f"{violation}"
                if violation is not None:
                    raise self._invalid(operation, response, problem or "", violation.path, violation.rule)
        if problem is not None:
            raise self._invalid(operation, response, problem, "", "content-type")
        return response

    def _invalid(
        self, operation: Operation, response: httpx.Response, problem: str, path: str, rule: str
    ) -> InvalidResponseBody:
        return InvalidResponseBody(
            f"the {response.status_code} answer of {operation.operation_id} does not match the document: {problem}",
            operation=operation.operation_id,
            path=path,
            rule=rule,
            integration=self._name,
            method=operation.method,
            url=redact_url(str(response.request.url), self._redact),
        )


class _ClientCalls(_CallsCore, Generic[_Client]):
    """A wrapper around one client (sync or async): its document and switches, the client's name, redacted query
    parameters and keyed methods."""

    def __init__(
        self, client: _Client, document: ApiDocument, *, requests: bool = True, responses: bool = True
    ) -> None:
        config = client.config
        super().__init__(
            document,
            name=config.name,
            redact_names=config.redact_query_params,
            keyed_methods=config.idempotency_methods,
            requests=requests,
            responses=responses,
        )
        self.client: _Client = client


class ValidatedCalls(_ClientCalls[ResilientClient]):
    """Operations of ``document`` called through ``client`` by ``operationId``, validated (see the module)."""

    def call(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        validate: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> httpx.Response:
        """Call the operation and return its 2xx response; ``path_params`` fill the path template, ``options``
        are :meth:`ResilientClient.request`'s, ``validate`` overrides the wrapper's switches for this call.

        Raises :class:`InvalidRequest` before sending, :class:`InvalidResponseBody` after, any error of the client,
        and :class:`~integration_kit.openapi.errors.OpenAPIError` for an unknown ``operation_id``.
        """
        operation, url = self._prepare(operation_id, path_params, options, validate)
        options = _guarded(operation, options)
        return self._check(operation, self.client.request(operation.method, url, **options), validate)


class AsyncValidatedCalls(_ClientCalls[AsyncResilientClient]):
    """The async twin of :class:`ValidatedCalls`, over an :class:`AsyncResilientClient`."""

    async def call(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        validate: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> httpx.Response:
        """Call the operation and return its 2xx response; see :meth:`ValidatedCalls.call`."""
        operation, url = self._prepare(operation_id, path_params, options, validate)
        options = _guarded(operation, options)
        return self._check(operation, await self.client.request(operation.method, url, **options), validate)


class ResponseCheck(_CallsCore):
    """The response half of :class:`ValidatedCalls` for one ``operation`` of ``document``, for a caller that sends
    its own requests (the playbook's live exercise): ``check(response)`` returns a 2xx response that matches the
    documented schema of its status and raises :class:`InvalidResponseBody` for one that does not. ``name`` (the
    integration, for the error) and ``redact_names`` (query parameters whose values the error's URL hides) come
    from the client's config."""

    def __init__(
        self,
        document: ApiDocument,
        operation: Operation,
        *,
        name: str,
        redact_names: frozenset[str] = frozenset(),
        validators: OperationValidators | None = None,
    ) -> None:
        super().__init__(document, name=name, redact_names=redact_names, requests=False, validators=validators)
        self.operation = operation

    def __call__(self, response: httpx.Response) -> httpx.Response:
        """``response`` when it matches the document; raises :class:`InvalidResponseBody`."""
        return self._check(self.operation, response, True)


def _guarded(operation: Operation, options: RequestOptions) -> RequestOptions:
    """``options`` with ``retry=False`` for a write the document gives no idempotency key (unless ``retry`` is
    set): see the module docstring."""
    if "retry" in options or operation.method in IDEMPOTENT_METHODS or operation.idempotency_key is not None:
        return options
    return {**options, "retry": False}
