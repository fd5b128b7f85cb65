"""OpenAPI: how long reading a document and writing a spec take, and what validation adds to a call.

    .venv/bin/python bench/openapi.py [DOCUMENT ...] [--calls 300] [--copies 600]

Part 1, for each DOCUMENT (default: the bundled payments one) and for a synthetic large one (the payments
document's paths copied ``--copies`` times: 4 operations each, so 2,400 by default): the file's size and
operations, the raw parser's time (json or PyYAML's C loader, the floor), :func:`read_openapi`'s (parse, check
every ``$ref``, build the model; the ratio to the raw parse), :func:`spec_text`'s for every operation, and the
process's peak memory after it. Public descriptions to try: Plaid's (plaid/plaid-openapi, 3 MB YAML), Twilio's
(twilio/twilio-oai, spec/json/twilio_api_v2010.json), Box's (box/box-openapi, openapi.json).

Part 2: ``--calls`` sequential calls of ``listCharges`` (a page of 100 charges, ~10 kB of JSON) over a uvicorn
server on 127.0.0.1, through a bare ResilientClient and through ValidatedCalls (request and response checked);
printed: the median per call and the ratio, and the validation alone (microseconds per page). Bounded: a few
seconds per part.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from integration_kit import ClientConfig, ResilientClient
from integration_kit.openapi import read_openapi
from integration_kit.openapi.calls import ValidatedCalls
from integration_kit.openapi.generate import spec_text
from integration_kit.openapi.validation import OperationValidators

PAYMENTS = Path(__file__).resolve().parents[1] / "data" / "openapi" / "payments.yaml"
PAGE = {
    "data": [
        {"id": f"ch_{i:06d}", "amount": 100 + i, "currency": "eur", "status": "succeeded", "card_last4": "4242"}
        for i in range(100)
    ]
}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def raw_parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        return json.loads(text)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def synthetic(copies: int, folder: Path) -> Path:
    """The payments document with its paths copied ``copies`` times under /vN prefixes (ids made unique)."""
    base = yaml.safe_load(PAYMENTS.read_text(encoding="utf-8"))
    paths: dict[str, Any] = {}
    for n in range(copies):
        for path, original in base["paths"].items():
            item = copy.deepcopy(original)
            for method in ("get", "post"):
                if method in item:
                    item[method]["operationId"] = f"{item[method]['operationId']}{n}"
            paths[f"/v{n}{path}"] = item
    path = folder / f"synthetic-{copies * 4}-operations.json"
    path.write_text(json.dumps({**base, "paths": paths}), encoding="utf-8")
    return path


def part1(documents: list[Path]) -> None:
    print(f"{'document':<44} {'MB':>6} {'ops':>6} {'raw s':>7} {'read s':>7} {'x raw':>6} {'spec s':>7} {'peak MB':>8}")
    for path in documents:
        raw_s, _ = timed(lambda p=path: raw_parse(p))  # type: ignore[misc]
        read_s, doc = timed(lambda p=path: read_openapi(p))  # type: ignore[misc]
        spec_s, text = timed(lambda d=doc, p=path: spec_text(d, "partner"))  # type: ignore[misc]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{path.name[:44]:<44} {path.stat().st_size / 1e6:>6.2f} {len(doc.operations):>6} {raw_s:>7.2f} "
            f"{read_s:>7.2f} {read_s / raw_s:>6.1f} {spec_s:>7.2f} {peak:>8.0f}"
        )
        assert text.count("\n[[operations]]\n") == len(doc.operations)


def serve() -> tuple[str, uvicorn.Server, threading.Thread]:
    async def charges(request: Request) -> JSONResponse:
        return JSONResponse(PAGE)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = Starlette(routes=[Route("/v1/charges", charges)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}/v1", server, thread


def part2(calls: int) -> None:
    url, server, thread = serve()
    doc = read_openapi(PAYMENTS)
    try:
        with ResilientClient(ClientConfig(name="payments", base_url=url)) as client:
            validated = ValidatedCalls(client, doc)
            bare: list[float] = []
            checked: list[float] = []
            for _ in range(calls):  # interleaved, so both see the same machine
                bare.append(timed(lambda: client.request("GET", "/charges", params={"limit": 100}).json())[0])
                checked.append(timed(lambda: validated.call("listCharges", params={"limit": 100}).json())[0])
    finally:
        server.should_exit = True
        thread.join(timeout=5)
    validators = OperationValidators(doc)
    op = doc.operation("listCharges")
    validators.check_response(op, 200, PAGE)
    alone, _ = timed(lambda: [validators.check_response(op, 200, PAGE) for _ in range(calls)])
    b, c = statistics.median(bare), statistics.median(checked)
    print(f"\n{'call (100 charges, ~10 kB)':<34} {'median ms':>10} {'x bare':>7}")
    print(f"{'ResilientClient.request + json':<34} {b * 1e3:>10.2f} {1.0:>7.2f}")
    print(f"{'ValidatedCalls.call + json':<34} {c * 1e3:>10.2f} {c / b:>7.2f}")
    print(f"validation alone: {alone / calls * 1e6:.0f} us per page ({len(json.dumps(PAGE))} bytes)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("documents", nargs="*", type=Path, help="OpenAPI documents to read (default: payments)")
    parser.add_argument("--calls", type=int, default=300, help="calls per client in part 2 (default 300, max 5000)")
    parser.add_argument("--copies", type=int, default=600, help="copies of the payments paths (default 600, max 5000)")
    args = parser.parse_args(argv)
    calls, copies = min(max(args.calls, 10), 5000), min(max(args.copies, 1), 5000)
    with tempfile.TemporaryDirectory() as folder:
        part1([*(args.documents or [PAYMENTS]), synthetic(copies, Path(folder))])
    part2(calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
