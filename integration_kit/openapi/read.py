"""Read an OpenAPI 3.0 or 3.1 document, or a Swagger 2.0 one, into the neutral model (:mod:`.model`).

:func:`read_openapi` parses the file safely (:mod:`.source`), checks what kind of document it is, checks every
``$ref`` (:mod:`.refs`), and builds one :class:`~integration_kit.openapi.model.Operation` per method of every
path. Anything it cannot use is an :class:`~integration_kit.openapi.errors.OpenAPIError` naming the JSON pointer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from integration_kit.openapi.errors import OpenAPIError
from integration_kit.openapi.model import (
    ApiDocument,
    Body,
    Operation,
    Parameter,
    Response,
    SecurityScheme,
    Server,
    escape,
)
from integration_kit.openapi.refs import References
from integration_kit.openapi.source import MAX_DOCUMENT_BYTES, read_source

__all__ = ["METHODS", "document_from_data", "read_openapi"]

#: The HTTP methods an OpenAPI path item may hold, in the order operations are listed.
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_LOCATIONS = ("query", "header", "path", "cookie")


def read_openapi(path: str | Path, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> ApiDocument:
    """Read the OpenAPI (3.0, 3.1) or Swagger (2.0) document at ``path``, JSON or YAML.

    Raises :class:`~integration_kit.openapi.errors.OpenAPIError` for a file that cannot be read or parsed, is
    larger than ``max_bytes`` (default :data:`~integration_kit.openapi.source.MAX_DOCUMENT_BYTES`), holds a YAML
    alias, is not an OpenAPI document, or has a broken or circular ``$ref``.
    """
    return document_from_data(read_source(path, max_bytes=max_bytes), source=str(path))


def document_from_data(data: Mapping[str, Any], *, source: str = "<document>") -> ApiDocument:
    """The model of an already parsed document; errors name ``source``. See :func:`read_openapi`."""
    version = _version(data, source)
    refs = References(data, source)
    refs.check_all(data)
    reader = _Reader(data, source, refs, swagger=version.startswith("2"))
    paths = data.get("paths", {})
    if not isinstance(paths, Mapping):
        raise OpenAPIError(source, "/paths", f"must be a mapping of paths, got {type(paths).__name__}")
    operations = [op for path, item in paths.items() for op in reader.operations(str(path), item)]
    seen: dict[str, str] = {}
    for op in operations:
        if op.operation_id in seen:
            raise OpenAPIError(
                source, op.id_pointer, f"operationId {op.operation_id!r} is also at {seen[op.operation_id]}"
            )
        seen[op.operation_id] = op.id_pointer
    info = data.get("info", {})
    return ApiDocument(
        source=source,
        version=version,
        title=str(info.get("title", "")) if isinstance(info, Mapping) else "",
        servers=reader.servers(),
        operations=tuple(operations),
        security_schemes=reader.security_schemes(),
        default_security=reader.security(data.get("security"), "/security") or (),
        data=data,
    )


def _version(data: Mapping[str, Any], source: str) -> str:
    if "openapi" in data:
        version = str(data["openapi"])
        if not re.fullmatch(r"3\.[01]\.\d+(-.+)?", version):
            raise OpenAPIError(source, "/openapi", f"OpenAPI {version!r} is not supported (3.0.x, 3.1.x or 2.0)")
        return version
    if "swagger" in data:
        if str(data["swagger"]) != "2.0":
            raise OpenAPIError(source, "/swagger", f"Swagger {data['swagger']!r} is not supported (2.0 only)")
        return "2.0"
    raise OpenAPIError(source, "", "not an OpenAPI document: no 'openapi' (3.x) or 'swagger' (2.0) field")


class _Reader:
    """Builds the model's parts from one document; ``swagger`` switches to the 2.0 layout."""

    def __init__(self, data: Mapping[str, Any], source: str, refs: References, *, swagger: bool) -> None:
        self.data = data
        self.source = source
        self.refs = refs
        self.swagger = swagger

    def fail(self, pointer: str, reason: str) -> OpenAPIError:
        return OpenAPIError(self.source, pointer, reason)

    def mapping(self, value: object, pointer: str) -> Mapping[str, Any]:
        node, where = self.refs.resolve(value, pointer)
        if not isinstance(node, Mapping):
            raise self.fail(where, f"must be a mapping, got {type(node).__name__}")
        return node

    def servers(self) -> tuple[Server, ...]:
        if self.swagger:
            host = self.data.get("host")
            if not isinstance(host, str) or not host:
                return ()
            schemes = self.data.get("schemes") or ["https"]
            scheme = "https" if "https" in schemes else str(schemes[0])
            return (Server(f"{scheme}://{host}{self.data.get('basePath', '')}".rstrip("/"), "/host"),)
        found = []
        for index, server in enumerate(self.data.get("servers") or []):
            if not isinstance(server, Mapping) or not isinstance(server.get("url"), str):
                raise self.fail(f"/servers/{index}/url", "a server needs a url string")
            url = server["url"]
            for name, variable in (server.get("variables") or {}).items():
                if isinstance(variable, Mapping) and "default" in variable:
                    url = url.replace("{" + str(name) + "}", str(variable["default"]))
            found.append(Server(url.rstrip("/"), f"/servers/{index}/url"))
        return tuple(found)

    def security_schemes(self) -> dict[str, SecurityScheme]:
        where = "/securityDefinitions" if self.swagger else "/components/securitySchemes"
        table = (
            self.data.get("securityDefinitions")
            if self.swagger
            else (self.data.get("components") or {}).get("securitySchemes")
        )
        schemes = {}
        for name, raw in (table or {}).items():
            pointer = f"{where}/{escape(str(name))}"
            scheme = self.mapping(raw, pointer)
            kind = scheme.get("type")
            if not isinstance(kind, str):
                raise self.fail(f"{pointer}/type", "a security scheme needs a type")
            schemes[str(name)] = SecurityScheme(
                name=str(name),
                type=kind,
                pointer=pointer,
                scheme=str(scheme.get("scheme", "basic" if kind == "basic" else "")).lower(),
                location=str(scheme.get("in", "")),
                header=str(scheme.get("name", "")),
            )
        return schemes

    def security(self, value: object, pointer: str) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.fail(pointer, "must be a list of security requirements")
        return tuple(dict.fromkeys(str(name) for req in value if isinstance(req, Mapping) for name in req))

    def operations(self, path: str, raw: object) -> list[Operation]:
        item_pointer = f"/paths/{escape(path)}"
        if not path.startswith("/"):
            raise self.fail(item_pointer, f"path {path!r} must start with '/'")
        item = self.mapping(raw, item_pointer)
        shared = self.parameters(item.get("parameters"), f"{item_pointer}/parameters")
        found = []
        for method in METHODS:
            if method not in item:
                continue
            pointer = f"{item_pointer}/{method}"
            op = self.mapping(item[method], pointer)
            own = self.parameters(op.get("parameters"), f"{pointer}/parameters")
            merged = {(p.location, p.name.lower()): p for p in (*shared, *own)}
            body = self.body(op, pointer)
            op_id = op.get("operationId")
            found.append(
                Operation(
                    operation_id=str(op_id) if op_id else f"{method.upper()} {path}",
                    method=method.upper(),
                    path=path,
                    pointer=pointer,
                    parameters=tuple(merged.values()),
                    body=body,
                    responses=self.responses(op.get("responses"), f"{pointer}/responses"),
                    security=self.security(op.get("security"), f"{pointer}/security"),
                    summary=str(op.get("summary", "")),
                    deprecated=bool(op.get("deprecated", False)),
                    id_pointer=f"{pointer}/operationId" if op_id else pointer,
                )
            )
        return found

    def parameters(self, value: object, pointer: str) -> tuple[Parameter, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(pointer, "must be a list of parameters")
        found = []
        for index, raw in enumerate(value):
            node, where = self.refs.resolve(raw, f"{pointer}/{index}")
            if not isinstance(node, Mapping) or not isinstance(node.get("name"), str):
                raise self.fail(where, "a parameter needs a name")
            location = node.get("in")
            if location in ("body", "formData"):  # Swagger 2.0: the body is a parameter (see body())
                continue
            if location not in _LOCATIONS:
                raise self.fail(f"{where}/in", f"'in' must be one of {', '.join(_LOCATIONS)}, got {location!r}")
            schema, schema_pointer = (node.get("schema"), f"{where}/schema") if "schema" in node else (None, "")
            if self.swagger and "type" in node:  # 2.0 keeps a non-body parameter's schema on the parameter itself
                schema = {
                    k: v
                    for k, v in node.items()
                    if k
                    in ("type", "format", "enum", "items", "minimum", "maximum", "pattern", "maxLength", "minLength")
                }
                schema_pointer = ""  # the parameter is not a schema (its `required` is a bool): inline
            found.append(
                Parameter(
                    node["name"],
                    location,
                    bool(node.get("required", location == "path")),
                    where,
                    schema,
                    schema_pointer,
                )
            )
        return tuple(found)

    def body(self, op: Mapping[str, Any], pointer: str) -> Body | None:
        if self.swagger:
            for index, raw in enumerate(op.get("parameters") or []):
                node, where = self.refs.resolve(raw, f"{pointer}/parameters/{index}")
                if isinstance(node, Mapping) and node.get("in") == "body":
                    consumes = op.get("consumes") or self.data.get("consumes") or ["application/json"]
                    return Body(
                        str(consumes[0]), bool(node.get("required")), where, node.get("schema"), f"{where}/schema"
                    )
            return None
        if "requestBody" not in op:
            return None
        node, where = self.refs.resolve(op["requestBody"], f"{pointer}/requestBody")
        if not isinstance(node, Mapping):
            raise self.fail(where, "requestBody must be a mapping")
        media, schema = _json_content(node.get("content"))
        escaped = escape(media)
        return Body(
            media,
            bool(node.get("required")),
            where,
            schema,
            f"{where}/content/{escaped}/schema" if schema is not None else "",
        )

    def responses(self, value: object, pointer: str) -> tuple[Response, ...]:
        if value is None:
            return ()
        if not isinstance(value, Mapping):
            raise self.fail(pointer, "must be a mapping of statuses to responses")
        found = []
        for status, raw in value.items():
            if str(status).startswith("x-"):
                continue
            node, where = self.refs.resolve(raw, f"{pointer}/{escape(str(status))}")
            if not isinstance(node, Mapping):
                raise self.fail(where, "a response must be a mapping")
            if self.swagger:
                schema = node.get("schema")
                found.append(
                    Response(
                        str(status),
                        where,
                        "application/json" if schema else "",
                        schema,
                        f"{where}/schema" if schema is not None else "",
                    )
                )
                continue
            media, schema = _json_content(node.get("content"))
            found.append(
                Response(
                    str(status),
                    where,
                    media,
                    schema,
                    f"{where}/content/{escape(media)}/schema" if schema is not None else "",
                )
            )
        return tuple(found)


def _json_content(content: object) -> tuple[str, Mapping[str, Any] | None]:
    """The media type a client would send or expect (JSON first) and its schema, from a ``content`` map."""
    if not isinstance(content, Mapping) or not content:
        return "", None
    names = [str(m) for m in content]
    media = next((m for m in names if m.split(";")[0].strip() == "application/json" or m.endswith("+json")), names[0])
    entry = content[media]
    schema = entry.get("schema") if isinstance(entry, Mapping) else None
    return media, schema if isinstance(schema, Mapping) else None
