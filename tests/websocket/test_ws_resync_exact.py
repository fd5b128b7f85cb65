"""``http_resync`` exactly, through the kit's HTTP client against a real HTTP server on 127.0.0.1: the query it
sends (the first and the last missing numbers, under the default and under custom names), the messages it returns
(each item as compact JSON text, in order), and the whole message of its refusal of an answer that is not JSON or
not a JSON array (naming the path)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgi_server import serve_in_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from integration_kit import AsyncResilientClient, ClientConfig
from integration_kit.errors import InvalidResponse
from integration_kit.websocket import http_resync

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(10)]


async def snapshot(request: Request) -> Response:
    if request.url.path == "/text":
        return PlainTextResponse("not json")
    if request.url.path == "/object":
        return JSONResponse({"items": []})
    query = dict(request.query_params)
    return JSONResponse([{"query": query, "n": 1, "nested": {"a": [1, 2]}}, {"n": 2, "s": "é"}])


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/{name}", snapshot)])
    with serve_in_thread(app) as url:
        yield url


async def test_the_missing_range_is_asked_for_and_returned_as_compact_json(base_url: str) -> None:
    async with AsyncResilientClient(ClientConfig(name="resync-exact", base_url=base_url)) as http:
        default = await http_resync(http, "/snap")(5, 9)
        custom = await http_resync(http, "/snap", first="since", last="until")(5, 6)
    assert list(default) == [
        '{"query":{"from":"5","to":"8"},"n":1,"nested":{"a":[1,2]}}',
        '{"n":2,"s":"\\u00e9"}',
    ]
    assert next(iter(custom)) == '{"query":{"since":"5","until":"5"},"n":1,"nested":{"a":[1,2]}}'


@pytest.mark.parametrize("path", ["/text", "/object"])
async def test_an_answer_that_is_not_a_json_array_is_refused_naming_the_path(base_url: str, path: str) -> None:
    async with AsyncResilientClient(ClientConfig(name="resync-exact", base_url=base_url)) as http:
        with pytest.raises(InvalidResponse) as caught:
            await http_resync(http, path)(1, 3)
    assert str(caught.value) == f"resync: {path} did not answer a JSON array"
