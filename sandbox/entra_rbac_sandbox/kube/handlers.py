"""The HTTP face of the sandbox API server: one aiohttp handler routing every Kubernetes path.

Holds ApiHandler: authentication and impersonation, authorization of every request (resource
and non-resource), discovery documents and /version, and the verbs (get, list with selectors
and limit/continue, watch, create, update, patch, delete, deletecollection) as JSON or as a
Table for kubectl, with failures as `Status` bodies. The semantics live in cluster.py; this
module only translates HTTP to calls and back.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import orjson
import yaml
from aiohttp import web

from . import errors, openapi, protobuf, reviews
from .auth import Authenticator
from .cluster import Cluster
from .rbac import Attributes, UserInfo
from .routing import Target, is_resource_path, parse_target, request_verb
from .selectors import parse_field_selector, parse_label_selector
from .table import to_table
from .watch import WatchRequest, serve_watch

log = logging.getLogger(__name__)
# kube-apiserver's --max-request-body-bytes default (apiserver pkg/server/config.go: 3 MiB); a
# larger body is refused with 413 before it is decoded. etcd's own limit on the stored object
# (--max-request-bytes, 1.5 MiB, a 500 "etcdserver: request is too large") is not modelled: the
# sandbox does not encode objects as protobuf (docs/sandbox.md).
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024

VERSION_INFO = {
    "major": "1",
    "minor": "34",
    "gitVersion": "v1.34.0-sandbox",
    "gitCommit": "sandbox",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_EVENT_FIELDS = (
    "involvedObject.",
    "regarding.",
    "reason",
    "type",
    "source",
    "reportingComponent",
    "reportingController",
)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(body, separators=(",", ":")), status=status, content_type="application/json"
    )


def _list_json(body: Any) -> web.Response:
    """A list, encoded with orjson: a page of thousands of objects is the sandbox's largest answer,
    and the standard library's encoder took most of the time `kubectl entra report` spent waiting
    on it (make bench, report). Same JSON (compact; UTF-8 where json escapes to \\u)."""
    return web.Response(body=orjson.dumps(body), status=200, content_type="application/json")


def error_response(error: errors.ApiError) -> web.Response:
    response = _json(error.status(), error.code)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _field_allowed(target: Target) -> Any:
    def allowed(path: str) -> bool:
        if path in ("metadata.name", "metadata.namespace"):
            return True
        if target.rtype.kind == "Event":
            return path.startswith(_EVENT_FIELDS)
        return target.rtype.kind == "Namespace" and path == "status.phase"

    return allowed


_PAGES = ("/apis", "/version", "/healthz", "/livez", "/readyz", "/openapi/v2", "/openapi/v3", "/metrics")


class ApiHandler:
    """Routes and serves every request of the Kubernetes API."""

    def __init__(
        self, cluster: Cluster, authenticator: Authenticator, *, bookmark_interval: float = 5.0
    ) -> None:
        self.cluster = cluster
        self.authenticator = authenticator
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = 1800.0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            user = self.authenticator.authenticate(request.headers)
            user = self.authenticator.impersonate(
                user,
                request.headers,
                request.headers.getall("Impersonate-Group", []),
                self.cluster.authorizer,
            )
            if self._no_such_page(request.path):
                # No API group serves it: Go's mux answers, in plain text, as on a real server.
                return web.Response(status=404, text="404 page not found\n", content_type="text/plain")
            if is_resource_path(request.path):
                return await self._resource(request, user)
            return self._non_resource(request, user)
        except errors.ApiError as error:
            return error_response(error)
        except Exception:  # a bug: answer as kube-apiserver does (500 Status) and say where
            log.exception("Request %s %s failed", request.method, request.path_qs)
            return error_response(
                errors.ApiError(
                    500, "InternalError", "an error on the server has prevented the request from succeeding"
                )
            )

    def _no_such_page(self, path: str) -> bool:
        """True for a path outside /api and every served group: /nope, /apis/nope.example.com/..."""
        parts = [p for p in path.split("/") if p]
        path = "/" + "/".join(parts)
        if (
            not parts
            or parts[0] == "api"
            or path in _PAGES
            or parts[0] in ("healthz", "livez", "readyz")
            or path.startswith("/openapi/")
        ):
            return False
        if parts[0] != "apis":
            return True
        return len(parts) > 1 and parts[1] not in self.cluster.registry.group_versions()

    # Discovery and other non-resource paths -------------------------------------------------

    def _non_resource(self, request: web.Request, user: UserInfo) -> web.Response:
        path = request.path.rstrip("/") or "/"
        verb = "get" if request.method == "HEAD" else request.method.lower()
        if not self.cluster.authorizer.allowed(user, Attributes(verb=verb, path=request.path)):
            raise errors.ApiError(
                403,
                "Forbidden",
                f'forbidden: User "{user.name}" cannot {verb} path "{request.path}"',
                details={},
            )
        registry = self.cluster.registry
        parts = [p for p in path.split("/") if p]
        body: Any = None
        if path == "/version":
            body = VERSION_INFO
        elif path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        elif path == "/api":
            host = request.host
            body = {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
            }
        elif path == "/apis":
            body = registry.api_group_list()
        elif len(parts) == 2 and parts[0] == "api":
            body = registry.resource_list("", parts[1])
        elif len(parts) == 2 and parts[0] == "apis":
            body = registry.api_group(parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            body = registry.resource_list(parts[1], parts[2])
        elif path == "/openapi/v3":
            body = openapi.root_document(registry)
        elif parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            group, version = (
                (parts[3], parts[4]) if parts[2] == "apis" and len(parts) == 5 else ("", parts[3])
            )
            body = openapi.group_version_document(registry, group, version)
        if body is None:
            raise errors.ApiError(
                404, "NotFound", "the server could not find the requested resource", details={}
            )
        return _json(body)

    # Resources ------------------------------------------------------------------------------

    async def _resource(self, request: web.Request, user: UserInfo) -> web.StreamResponse:
        target = parse_target(self.cluster.registry, request.path)
        if target is None or (target.rtype.namespaced and target.name and not target.namespace):
            raise errors.ApiError(
                404, "NotFound", "the server could not find the requested resource", details={}
            )
        if target.subresource and not (target.subresource == "status" and target.rtype.has_status):
            raise errors.ApiError(
                404, "NotFound", "the server could not find the requested resource", details={}
            )
        verb = request_verb(request.method, target, request.query)
        if verb not in target.rtype.verbs and not (target.subresource and verb in ("get", "update", "patch")):
            raise errors.method_not_allowed()
        rtype = target.rtype
        attrs = Attributes(verb, rtype.group, rtype.plural, target.subresource, target.namespace, target.name)
        if not rtype.persisted:
            attrs = Attributes("create", rtype.group, rtype.plural, "", target.namespace, "")
        if not self.cluster.authorizer.allowed(user, attrs):
            raise errors.forbidden(rtype.plural, target.name, attrs.describe(user), rtype.group)
        if verb == "watch" or (verb == "list" and request.query.get("watch") in ("true", "1")):
            return await self._watch(request, target)
        if verb == "list":
            return self._list(request, target)
        if verb == "get":
            obj = self.cluster.get(rtype, target.namespace, target.name)
            if _wants_table(request):
                return _json(
                    to_table(
                        rtype,
                        [obj],
                        {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                        request.query.get("includeObject", "Metadata"),
                    )
                )
            return _json(obj)
        if verb in ("delete", "deletecollection"):
            return await self._delete(request, target, verb)
        return await self._write(request, target, verb, user)

    def _selectors(self, request: web.Request, target: Target) -> tuple[Any, Any]:
        try:
            labels = parse_label_selector(request.query.get("labelSelector"))
            fields = parse_field_selector(request.query.get("fieldSelector"), _field_allowed(target))
        except ValueError as exc:
            raise errors.bad_request(str(exc)) from exc
        return labels, fields

    def _list(self, request: web.Request, target: Target) -> web.Response:
        labels, fields = self._selectors(request, target)
        namespace = target.namespace if target.rtype.namespaced and target.namespace else None
        limit = int(request.query.get("limit") or 0)
        items, more, remaining = self.cluster.list_page(
            target.rtype, namespace, labels, fields, after=self._continue_after(request), limit=max(limit, 0)
        )
        meta: dict[str, Any] = {"resourceVersion": str(self.cluster.store.rv)}
        if more:
            last = items[-1]["metadata"]
            key = {"ns": last.get("namespace") or "", "name": last["name"], "rv": self.cluster.store.rv}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
            if remaining is not None:
                meta["remainingItemCount"] = remaining
        if _wants_table(request):
            return _json(to_table(target.rtype, items, meta, request.query.get("includeObject", "Metadata")))
        kind = target.rtype.kind + "List"
        return _list_json(
            {"kind": kind, "apiVersion": target.rtype.api_version, "metadata": meta, "items": items}
        )

    def _continue_after(self, request: web.Request) -> tuple[str, str] | None:
        """limit/continue: the token holds the last key served (lists resume after it)."""
        token = request.query.get("continue")
        if not token:
            return None
        try:
            last = json.loads(base64.urlsafe_b64decode(token.encode()))
            start = (str(last["ns"]), str(last["name"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise errors.bad_request(f"continue key is not valid: {exc}") from exc
        if last.get("rv", 0) < self.cluster.store.compacted_floor():
            raise errors.gone(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter."
            )
        return start

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        labels, fields = self._selectors(request, target)
        query = request.query
        watch = WatchRequest(
            rtype=target.rtype,
            namespace=target.namespace if target.rtype.namespaced and target.namespace else None,
            name=target.name,
            labels=labels,
            fields=fields,
            resource_version=query.get("resourceVersion", ""),
            bookmarks=query.get("allowWatchBookmarks") in ("true", "1"),
            send_initial=query.get("sendInitialEvents") in ("true", "1"),
            timeout=float(query.get("timeoutSeconds") or self.watch_timeout),
            table=request.query.get("includeObject", "Metadata") if _wants_table(request) else None,
        )
        return await serve_watch(request, self.cluster, watch, self.bookmark_interval)

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        if len(raw) > MAX_REQUEST_BODY_BYTES:
            raise errors.request_entity_too_large(MAX_REQUEST_BODY_BYTES)
        if "protobuf" in request.content_type:
            try:
                return protobuf.decode(raw)
            except protobuf.ProtobufError as exc:
                raise errors.ApiError(415, "UnsupportedMediaType", str(exc)) from exc
        try:
            if "yaml" in (request.content_type or ""):
                return yaml.safe_load(raw)
            return json.loads(raw or b"{}")
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"the request body could not be decoded: {exc}") from exc

    async def _write(self, request: web.Request, target: Target, verb: str, user: UserInfo) -> web.Response:
        body = await self._body(request)
        cluster = self.cluster
        dry_run = "All" in request.query.getall("dryRun", [])
        # Unknown fields: Strict refuses them; Warn (the default) and Ignore drop them, Warn saying so.
        field_validation = request.query.get("fieldValidation") or "Warn"
        if field_validation not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(f'fieldValidation: "{field_validation}" must be Strict, Warn or Ignore')
        cluster.warnings = []
        response = self._written(request, target, verb, user, body, dry_run, field_validation)
        for warning in cluster.warnings:
            response.headers.add("Warning", '299 - "' + warning.replace('"', '\\"') + '"')
        return response

    def _written(
        self,
        request: web.Request,
        target: Target,
        verb: str,
        user: UserInfo,
        body: Any,
        dry_run: bool,
        field_validation: str,
    ) -> web.Response:
        rtype, cluster = target.rtype, self.cluster
        manager = field_manager(request)
        if verb != "patch" and not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        if not rtype.persisted:
            return _json(reviews.review(rtype, body, user, target.namespace, cluster.authorizer), 201)
        if verb == "create":
            if target.name:
                raise errors.method_not_allowed()
            return _json(
                cluster.create(
                    rtype,
                    target.namespace,
                    body,
                    user,
                    dry_run=dry_run,
                    field_validation=field_validation,
                    manager=manager,
                ),
                201,
            )
        if verb == "update":
            return _json(
                cluster.update(
                    rtype,
                    target.namespace,
                    target.name,
                    body,
                    user,
                    subresource=target.subresource,
                    dry_run=dry_run,
                    field_validation=field_validation,
                    manager=manager,
                )
            )
        content_type = request.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip() == APPLY_PATCH:
            applied, created = cluster.apply(
                rtype,
                target.namespace,
                target.name,
                body,
                user,
                manager=request.query.get("fieldManager", ""),
                force=request.query.get("force") in ("true", "1"),
                subresource=target.subresource,
                dry_run=dry_run,
                field_validation=request.query.get("fieldValidation") or "Strict",
            )
            return _json(applied, 201 if created else 200)
        return _json(
            cluster.patch(
                rtype,
                target.namespace,
                target.name,
                content_type,
                body,
                user,
                subresource=target.subresource,
                dry_run=dry_run,
                field_validation=field_validation,
                manager=manager,
            )
        )

    async def _delete(self, request: web.Request, target: Target, verb: str) -> web.Response:
        options = await self._body(request) if (await request.read()).strip() else {}
        if not isinstance(options, dict):
            raise errors.bad_request("DeleteOptions must be an object")
        if request.query.get("propagationPolicy"):
            options["propagationPolicy"] = request.query["propagationPolicy"]
        if options.get("orphanDependents") is True or request.query.get("orphanDependents") == "true":
            options.setdefault("propagationPolicy", "Orphan")
        if options.get("propagationPolicy") not in (None, "Background", "Foreground", "Orphan"):
            raise errors.invalid(
                "DeleteOptions",
                "",
                [
                    errors.FieldError(
                        "propagationPolicy",
                        "FieldValueNotSupported",
                        'supported values: "Foreground", "Background", "Orphan"',
                        options["propagationPolicy"],
                    )
                ],
            )
        dry_run = "All" in request.query.getall("dryRun", []) or "All" in (options.get("dryRun") or [])
        rtype, cluster = target.rtype, self.cluster
        if verb == "deletecollection":
            labels, fields = self._selectors(request, target)
            victims = cluster.list(rtype, target.namespace or None, labels, fields)
            for victim in victims:
                cluster.delete(rtype, target.namespace, victim["metadata"]["name"], options, dry_run=dry_run)
            return _json(
                {
                    "kind": rtype.kind + "List",
                    "apiVersion": rtype.api_version,
                    "metadata": {"resourceVersion": str(cluster.store.rv)},
                    "items": victims,
                }
            )
        obj, gone = cluster.delete(rtype, target.namespace, target.name, options, dry_run=dry_run)
        if not gone:
            return _json(obj, 202 if obj["metadata"].get("deletionTimestamp") else 200)
        if rtype.crd_name is not None or rtype.kind in ("Namespace", "CustomResourceDefinition"):
            return _json(obj)
        details = {"name": target.name, "kind": rtype.plural, "uid": obj["metadata"].get("uid")}
        if rtype.group:
            details["group"] = rtype.group
        return _json(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )


APPLY_PATCH = "application/apply-patch+yaml"


def field_manager(request: web.Request) -> str:
    """The request's field manager: `fieldManager`, else its User-Agent up to the first `/`
    (kube-apiserver's default), at most 128 characters."""
    given = request.query.get("fieldManager")
    if given:
        return given
    return request.headers.get("User-Agent", "").split("/")[0][:128]


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")
