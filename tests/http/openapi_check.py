#!/usr/bin/env python3
"""GET /openapi.json is a valid OpenAPI 3 document of the whole API, and the
server's real answers match the schemas it declares.

No PyPI here, so a structural validator of the OpenAPI 3.0 essentials:
version, info, paths (templates and their path parameters), operations
(unique operationId, responses with descriptions, parameters with name/in/
schema), every $ref resolving, schema objects well formed, security schemes
defined. Then real bodies (report, series, loan, health, errors) are checked
against their response schemas with a small JSON-Schema subset (type,
required, properties, items, enum, nullable, $ref), every key of a real
body being a described property.
usage: openapi_check.py BUILD_DIR
"""
import json
import os
import re
import sys
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ERRORS = []
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
TYPES = {"string", "number", "integer", "boolean", "array", "object"}


def err(msg):
    ERRORS.append(msg)
    print("FAIL:", msg)


def resolve(doc, ref, where):
    if not ref.startswith("#/"):
        err(f"{where}: external $ref {ref}")
        return None
    node = doc
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            err(f"{where}: $ref {ref} does not resolve")
            return None
        node = node[part]
    return node


def check_schema(doc, schema, where):
    if not isinstance(schema, dict):
        err(f"{where}: schema is not an object")
        return
    if "$ref" in schema:
        resolve(doc, schema["$ref"], where)
        return
    t = schema.get("type")
    if t is not None and t not in TYPES:
        err(f"{where}: bad type {t!r}")
    if t == "array":
        if "items" not in schema:
            err(f"{where}: array without items")
        else:
            check_schema(doc, schema["items"], where + ".items")
    for name, sub in schema.get("properties", {}).items():
        check_schema(doc, sub, f"{where}.{name}")
    for name in schema.get("required", []):
        if name not in schema.get("properties", {}):
            err(f"{where}: required {name!r} is not a property")
    if "enum" in schema and not isinstance(schema["enum"], list):
        err(f"{where}: enum is not a list")


def validate_document(doc):
    if not re.fullmatch(r"3\.\d+\.\d+", str(doc.get("openapi", ""))):
        err(f"openapi version {doc.get('openapi')!r}")
    info = doc.get("info", {})
    for key in ("title", "version"):
        if not isinstance(info.get(key), str) or not info.get(key):
            err(f"info.{key} missing")
    if "@" in info.get("version", ""):
        err(f"info.version not filled in: {info.get('version')}")
    schemes = doc.get("components", {}).get("securitySchemes", {})
    for req in doc.get("security", []):
        for name in req:
            if name not in schemes:
                err(f"security scheme {name} undefined")
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        check_schema(doc, schema, "components.schemas." + name)
    op_ids = set()
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        err("no paths")
        return
    for path, item in paths.items():
        if not path.startswith("/"):
            err(f"path {path} does not start with /")
        template = set(re.findall(r"\{([^}]+)\}", path))
        for method, op in item.items():
            if method not in METHODS:
                err(f"{path}: unknown key {method}")
                continue
            where = f"{method.upper()} {path}"
            oid = op.get("operationId")
            if not oid or oid in op_ids:
                err(f"{where}: missing or duplicate operationId {oid}")
            op_ids.add(oid)
            declared = set()
            for p in op.get("parameters", []):
                if "$ref" in p:
                    p = resolve(doc, p["$ref"], where) or {}
                if p.get("in") not in ("query", "path", "header", "cookie") or not p.get("name"):
                    err(f"{where}: bad parameter {p}")
                if "schema" not in p and "content" not in p:
                    err(f"{where}: parameter {p.get('name')} has no schema")
                else:
                    check_schema(doc, p.get("schema", {}), f"{where} param {p.get('name')}")
                if p.get("in") == "path":
                    declared.add(p["name"])
                    if p.get("required") is not True:
                        err(f"{where}: path parameter {p['name']} not required")
            if declared != template:
                err(f"{where}: path parameters {declared} != template {template}")
            responses = op.get("responses")
            if not isinstance(responses, dict) or not responses:
                err(f"{where}: no responses")
                continue
            for code, resp in responses.items():
                if not re.fullmatch(r"[1-5]\d\d|[1-5]XX|default", code):
                    err(f"{where}: bad response code {code}")
                if "$ref" in resp:
                    resp = resolve(doc, resp["$ref"], where) or {}
                if not resp.get("description"):
                    err(f"{where} {code}: no description")
                for media, content in resp.get("content", {}).items():
                    if "schema" in content:
                        check_schema(doc, content["schema"], f"{where} {code} {media}")


def matches(doc, schema, value, where):
    """Checks value against schema (subset); records errors."""
    if "$ref" in schema:
        schema = resolve(doc, schema["$ref"], where) or {}
    if value is None:
        if not schema.get("nullable"):
            err(f"{where}: null but not nullable")
        return
    t = schema.get("type")
    ok = {"string": lambda v: isinstance(v, str), "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "boolean": lambda v: isinstance(v, bool), "array": lambda v: isinstance(v, list),
          "object": lambda v: isinstance(v, dict)}
    if t and not ok[t](value):
        err(f"{where}: {value!r} is not {t}")
        return
    if "enum" in schema and value not in schema["enum"]:
        err(f"{where}: {value!r} not in {schema['enum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        err(f"{where}: {value!r} does not match {schema['pattern']}")
    if t == "object":
        for name in schema.get("required", []):
            if name not in value:
                err(f"{where}: missing {name}")
        props = schema.get("properties", {})
        for name, v in value.items():
            if name in props:
                matches(doc, props[name], v, f"{where}.{name}")
            else:
                # The document describes all of the API: every key a real answer has.
                err(f"{where}: key {name!r} is not described")
    if t == "array":
        for i, v in enumerate(value):
            matches(doc, schema["items"], v, f"{where}[{i}]")


def fetch(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def main():
    server = harness.Server(sys.argv[1])
    try:
        status, doc = fetch(server.url + "/openapi.json")
        if status != 200:
            err(f"/openapi.json: {status}")
            return 1
        validate_document(doc)
        paths = doc["paths"]
        for p in ("/v1/report", "/v1/series", "/v1/loans/{institution_id}/{loan_id}", "/v1/health",
                  "/openapi.json", "/"):
            if "get" not in paths.get(p, {}):
                err(f"GET {p} not described")
        for p in ("/v1/report", "/v1/series", "/v1/loans/{institution_id}/{loan_id}"):
            for code in ("200", "400", "401", "403", "503"):
                if code not in paths[p]["get"]["responses"]:
                    err(f"GET {p}: response {code} not described")
        names = {q["name"] for q in paths["/v1/report"]["get"]["parameters"]}
        if names != {"date", "by", "category"}:
            err(f"report parameters {names}")
        names = {q["name"] for q in paths["/v1/series"]["get"]["parameters"]}
        if names != {"category", "from", "to", "step", "by"}:
            err(f"series parameters {names}")
        reg = server.tokens["regulator"]

        def body_schema(path, code):
            return paths[path]["get"]["responses"][code]["content"]["application/json"]["schema"]

        cases = [("/v1/report", "/v1/report?date=2024-09-30", "200"),
                 ("/v1/report", "/v1/report?date=2024-09-30&by=province", "200"),
                 ("/v1/report", "/v1/report?date=2024-09-30&by=institution", "200"),
                 ("/v1/series", "/v1/series?category=GREEN&from=2023-01-01&to=2024-09-30&by=province", "200"),
                 ("/v1/loans/{institution_id}/{loan_id}", "/v1/loans/B0001/L1", "200"),
                 ("/v1/loans/{institution_id}/{loan_id}", "/v1/loans/B0001/NOPE", "404"),
                 ("/v1/report", "/v1/report?date=nope", "400"),
                 ("/v1/health", "/v1/health", "200")]
        for path, url, code in cases:
            status, body = fetch(server.url + url, reg)
            if str(status) != code:
                err(f"{url}: {status}, expected {code}")
                continue
            matches(doc, body_schema(path, code), body, url)
        status, body = fetch(server.url + "/v1/report?date=2024-09-30")
        matches(doc, body_schema("/v1/report", "401"), body, "401 body")
    finally:
        server.stop()
    print(f"openapi: {'FAILED' if ERRORS else 'passed'}")
    return 1 if ERRORS else 0


if __name__ == "__main__":
    sys.exit(main())
