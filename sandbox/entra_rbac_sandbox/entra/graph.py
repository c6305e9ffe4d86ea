"""The Graph v1.0 subset the operator uses, over the sandbox directory, independent of HTTP.

Holds `Graph.dispatch(GraphRequest) -> GraphResponse` for: `GET /groups` ($filter, $select,
$top, $count, paging), `GET /groups/{id}`, `GET /groups/{id}/members` and `/transitiveMembers`
(with the `/microsoft.graph.<type>` casts), `GET /users/{id}`, `/servicePrincipals/{id}`,
`/directoryObjects/{id}`, `POST /directoryObjects/getByIds` and `GET /groups/delta`
(`delta.py`). `$batch` lives in `batch.py`,
HTTP and tokens in `server.py`. Behaviour follows Graph v1.0 (see docs/design.md, Platform facts),
including its known
issue that `/members` does not list service principals (they do appear in `/transitiveMembers`).

Paging: at most `$top` (default 100, at most 999) items a page, then `@odata.nextLink`: the same
URL with an opaque `$skiptoken` (bound to the query it came from). The directory may change
between pages; like Graph, a read across pages is not a snapshot.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from multidict import CIMultiDict, MultiDict

from entra_rbac_sandbox.entra import errors, odata
from entra_rbac_sandbox.entra.delta import GroupDelta
from entra_rbac_sandbox.entra.directory import Directory, DirectoryObject
from entra_rbac_sandbox.entra.errors import GraphError

GROUP_READ_ROLES = frozenset({"GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"})
USER_READ_ROLES = frozenset({"User.ReadBasic.All", "User.Read.All", "Directory.Read.All"})
GROUP_FILTER_PROPERTIES: Mapping[str, type] = {
    "id": str,
    "displayName": str,
    "mailNickname": str,
    "description": str,
    "securityEnabled": bool,
    "mailEnabled": bool,
}
QUERY_OPTIONS = frozenset({"$filter", "$select", "$top", "$count", "$skiptoken", "$deltatoken"})
GET_BY_IDS_LIMIT = 1000
TYPE_NAMES = {
    "user": "user",
    "group": "group",
    "serviceprincipal": "servicePrincipal",
    "device": "device",
    "orgcontact": "orgContact",
}


@dataclass
class GraphRequest:
    """One Graph call: `path` is relative to `/v1.0` (e.g. `/groups/{id}/members`)."""

    method: str
    path: str
    query: MultiDict[str]
    headers: CIMultiDict[str]
    base_url: str  # e.g. https://127.0.0.1:PORT/v1.0, for @odata.context and nextLink
    roles: frozenset[str]
    body: Any = None

    @property
    def advanced(self) -> bool:
        """An advanced query: `ConsistencyLevel: eventual` and `$count=true` together."""
        eventual = self.headers.get("ConsistencyLevel", "").lower() == "eventual"
        return eventual and self.query.get("$count", "").lower() == "true"


@dataclass
class GraphResponse:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[GraphRequest, Directory, "re.Match[str]"], GraphResponse]


class Graph:
    """Routes Graph calls to handlers over the current directory."""

    def __init__(self, directory: Callable[[], Directory]) -> None:
        self._directory = directory
        self.delta = GroupDelta(directory)
        self._routes: list[tuple[str, re.Pattern[str], Route]] = [
            ("GET", re.compile(r"/groups"), self._list_groups),
            # Before /groups/{id}: `delta` is a function, not an id.
            ("GET", re.compile(r"/groups/(?:microsoft\.graph\.)?delta(?:\(\))?"), self._delta),
            ("GET", re.compile(r"/groups/(?P<id>[^/]+)"), self._get_group),
            (
                "GET",
                re.compile(r"/groups/(?P<id>[^/]+)/(?P<rel>members|transitiveMembers)(?:/(?P<cast>[^/]+))?"),
                self._members,
            ),
            (
                "GET",
                re.compile(r"/(?P<kind>users|servicePrincipals|directoryObjects)/(?P<id>[^/]+)"),
                self._get,
            ),
            ("POST", re.compile(r"/directoryObjects/getByIds"), self._get_by_ids),
        ]

    def dispatch(self, request: GraphRequest) -> GraphResponse:
        """Answer one call; every refusal is a GraphResponse with Graph's error JSON."""
        try:
            return self._dispatch(request)
        except (GraphError, odata.ODataError) as error:
            if isinstance(error, odata.ODataError):
                error = GraphError(400, error.code, error.message)
            client_id = request.headers.get("client-request-id")
            return GraphResponse(error.status, error.body(client_id), dict(error.headers))

    def _dispatch(self, request: GraphRequest) -> GraphResponse:
        path = request.path.rstrip("/") or "/"
        allowed: list[str] = []
        for method, pattern, route in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            _check_query_options(request.query)
            if not request.roles & GROUP_READ_ROLES:
                raise GraphError(403, errors.DENIED, "Insufficient privileges to complete the operation.")
            return route(request, self._directory(), match)
        if allowed:
            raise GraphError(405, errors.BAD_REQUEST, f"The method {request.method} is not allowed here.")
        segment = path.strip("/").split("/")[0] if path.strip("/") else path
        raise GraphError(400, errors.BAD_REQUEST, f"Resource not found for the segment '{segment}'.")

    # Handlers --------------------------------------------------------------------------------

    def _list_groups(self, request: GraphRequest, directory: Directory, _: re.Match[str]) -> GraphResponse:
        groups = directory.groups()
        if "$filter" in request.query:
            predicate = odata.parse_filter(
                request.query["$filter"], GROUP_FILTER_PROPERTIES, "group", advanced=request.advanced
            )
            groups = [g for g in groups if predicate(g.properties)]
        return self._page(request, groups, "groups")

    def _delta(self, request: GraphRequest, _directory: Directory, _: re.Match[str]) -> GraphResponse:
        query = {k: request.query[k] for k in request.query}
        return GraphResponse(200, self.delta.answer(request.base_url, request.path, query))

    def _get_group(self, request: GraphRequest, directory: Directory, match: re.Match[str]) -> GraphResponse:
        group = _find(directory, match["id"], "group")
        body = {"@odata.context": f"{request.base_url}/$metadata#groups/$entity"}
        body.update(_render(group, request, cast=None))
        return GraphResponse(200, body)

    def _get(self, request: GraphRequest, directory: Directory, match: re.Match[str]) -> GraphResponse:
        kind = {"users": "user", "servicePrincipals": "servicePrincipal"}.get(match["kind"])
        found = _find(directory, match["id"], kind)
        body = {"@odata.context": f"{request.base_url}/$metadata#{match['kind']}/$entity"}
        body.update(_render(found, request, cast=None))
        return GraphResponse(200, body)

    def _members(self, request: GraphRequest, directory: Directory, match: re.Match[str]) -> GraphResponse:
        group = _find(directory, match["id"], "group")
        if "$filter" in request.query:
            raise GraphError(
                400, errors.UNSUPPORTED_QUERY, "The sandbox does not support $filter on group members."
            )
        transitive = match["rel"] == "transitiveMembers"
        members = directory.transitive_members(group.id) if transitive else directory.members(group.id)
        if not transitive:
            # Graph v1.0 known issue, kept on purpose: /members leaves service principals out.
            members = [m for m in members if m.kind != "servicePrincipal"]
        cast = _cast(match["cast"]) if match["cast"] else None
        if cast is not None:
            if transitive and not request.advanced:
                raise GraphError(
                    400,
                    errors.UNSUPPORTED_QUERY,
                    "OData cast on transitiveMembers is an advanced query: it needs the ConsistencyLevel: "
                    "eventual header and $count=true.",
                )
            members = [m for m in members if m.kind == cast]
        context = "directoryObjects" if cast is None else f"{cast}s"
        return self._page(request, members, context, polymorphic=True)

    def _get_by_ids(self, request: GraphRequest, directory: Directory, _: re.Match[str]) -> GraphResponse:
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
            raise GraphError(
                400, errors.REQUEST_BAD_REQUEST, "The request body must hold 'ids', a list of ids."
            )
        ids: list[object] = body["ids"]
        if not ids:
            raise GraphError(400, errors.REQUEST_BAD_REQUEST, "ids: at least one id is required.")
        if len(ids) > GET_BY_IDS_LIMIT:
            raise GraphError(
                400,
                errors.REQUEST_BAD_REQUEST,
                f"ids: {len(ids)} ids were sent; at most {GET_BY_IDS_LIMIT} are allowed in one call.",
            )
        types = body.get("types") or []
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise GraphError(400, errors.REQUEST_BAD_REQUEST, "types: must be a list of type names.")
        kinds = {_type_name(t) for t in types}
        found: list[DirectoryObject] = []
        for raw in dict.fromkeys(ids):
            if not isinstance(raw, str) or not _is_guid(raw):
                raise GraphError(400, errors.REQUEST_BAD_REQUEST, f"Invalid object identifier '{raw}'.")
            obj = directory.get(raw)
            if obj is not None and (not kinds or obj.kind in kinds):
                found.append(obj)
        value = [_render(obj, request, cast=None, polymorphic=True) for obj in found]
        return GraphResponse(
            200, {"@odata.context": f"{request.base_url}/$metadata#directoryObjects", "value": value}
        )

    # Paging ----------------------------------------------------------------------------------

    def _page(
        self,
        request: GraphRequest,
        items: Sequence[DirectoryObject],
        context: str,
        *,
        polymorphic: bool = False,
    ) -> GraphResponse:
        top = odata.parse_top(request.query.get("$top"))
        count = request.query.get("$count")
        if count is not None and count.lower() not in ("true", "false"):
            raise GraphError(
                400, errors.BAD_REQUEST, f"Invalid value '{count}' for $count: use true or false."
            )
        fingerprint = _fingerprint(request)
        offset = _read_skiptoken(request.query.get("$skiptoken"), fingerprint)
        page = items[offset : offset + top]
        body: dict[str, Any] = {"@odata.context": f"{request.base_url}/$metadata#{context}"}
        if request.advanced:
            # Without ConsistencyLevel: eventual, Graph silently ignores $count=true.
            body["@odata.count"] = len(items)
        if offset + top < len(items):
            query = [(k, v) for k, v in request.query.items() if k != "$skiptoken"]
            query.append(("$skiptoken", _skiptoken(offset + top, fingerprint)))
            body["@odata.nextLink"] = (
                f"{request.base_url}{request.path}?{urlencode(query, quote_via=quote, safe='$,')}"
            )
        body["value"] = [_render(obj, request, cast=None, polymorphic=polymorphic) for obj in page]
        return GraphResponse(200, body)


def _check_query_options(query: MultiDict[str]) -> None:
    for name in {key for key in query if key.startswith("$")}:
        if len(query.getall(name)) > 1:
            raise GraphError(400, errors.BAD_REQUEST, f"Query option '{name}' was specified more than once.")
        if name not in QUERY_OPTIONS:
            raise GraphError(
                400, errors.BAD_REQUEST, f"Query option '{name}' is not supported by the sandbox directory."
            )


def _find(directory: Directory, object_id: str, kind: str | None) -> DirectoryObject:
    if not _is_guid(object_id):
        raise GraphError(400, errors.REQUEST_BAD_REQUEST, f"Invalid object identifier '{object_id}'.")
    found = directory.get(object_id)
    if found is None or (kind is not None and found.kind != kind):
        raise GraphError(
            404,
            errors.NOT_FOUND,
            f"Resource '{object_id}' does not exist or one of its queried reference-property objects "
            "are not present.",
        )
    return found


def _render(
    obj: DirectoryObject, request: GraphRequest, *, cast: str | None, polymorphic: bool = False
) -> dict[str, Any]:
    properties = obj.properties
    if obj.kind == "user" and not request.roles & USER_READ_ROLES:
        # Without a user-read permission Graph shows member users as id and type only.
        properties = {"id": obj.id}
        polymorphic = True
    selected = odata.select(properties, odata.parse_select(request.query.get("$select")))
    if polymorphic or cast:
        return {"@odata.type": obj.odata_type, **selected}
    return selected


def _cast(segment: str) -> str:
    name = segment.removeprefix("microsoft.graph.")
    if name == segment:
        raise GraphError(400, errors.BAD_REQUEST, f"Resource not found for the segment '{segment}'.")
    return _type_name(name)


def _type_name(name: str) -> str:
    kind = TYPE_NAMES.get(name.removeprefix("microsoft.graph.").lower())
    if kind is None:
        raise GraphError(400, errors.REQUEST_BAD_REQUEST, f"Unknown directory object type '{name}'.")
    return kind


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _fingerprint(request: GraphRequest) -> str:
    """Binds a skiptoken to its query, so a token pasted onto another query is refused."""
    parts = [
        request.path.lower(),
        *(f"{k}={v}" for k, v in sorted(request.query.items()) if k != "$skiptoken"),
    ]
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=6).hexdigest()


def _skiptoken(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "q": fingerprint}, separators=(",", ":")).encode()
    return "RFNwdAI" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_skiptoken(token: str | None, fingerprint: str) -> int:
    if token is None:
        return 0
    try:
        payload = token.removeprefix("RFNwdAI")
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if decoded["q"] == fingerprint and isinstance(decoded["o"], int) and decoded["o"] >= 0:
            return int(decoded["o"])
    except (ValueError, KeyError, TypeError):
        pass
    raise GraphError(400, errors.REQUEST_BAD_REQUEST, "Invalid $skiptoken: use the @odata.nextLink as it is.")
