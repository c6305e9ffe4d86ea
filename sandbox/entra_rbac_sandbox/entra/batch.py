"""Graph's JSON batching: `POST /$batch` with up to 20 requests, each answered on its own.

Holds the batch envelope's validation, the dispatch of each inner request through `Graph` (with
a hook the server uses to count inner requests and inject faults into them), `dependsOn`, and the
order of the answers: reversed, because Graph promises no order and clients must match by `id`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from multidict import CIMultiDict, MultiDict

from entra_rbac_sandbox.entra import errors
from entra_rbac_sandbox.entra.errors import GraphError
from entra_rbac_sandbox.entra.graph import Graph, GraphRequest, GraphResponse

MAX_REQUESTS = 20

# (method, path, query string) of one inner request -> an injected answer, or None to serve it.
InnerHook = Callable[[str, str, str], Awaitable[GraphResponse | None]]


async def run_batch(graph: Graph, outer: GraphRequest, on_inner: InnerHook) -> GraphResponse:
    try:
        requests = _requests(outer.body)
    except GraphError as error:
        return GraphResponse(error.status, error.body(), error.headers)
    answers: dict[str, GraphResponse] = {}
    for item in requests:
        failed = [d for d in item.get("dependsOn", []) if answers[d].status >= 400]
        if failed:
            body = errors.error_body(
                "FailedDependency", f"A request this one depends on failed: {failed[0]}."
            )
            answers[item["id"]] = GraphResponse(424, body)
            continue
        answers[item["id"]] = await _one(graph, outer, item, on_inner)
    responses = [_render(request_id, answers[request_id]) for request_id in reversed(list(answers))]
    return GraphResponse(200, {"responses": responses})


async def _one(graph: Graph, outer: GraphRequest, item: dict[str, Any], on_inner: InnerHook) -> GraphResponse:
    split = urlsplit("/" + item["url"].lstrip("/"))
    method = item["method"].upper()
    injected = await on_inner(method, split.path, split.query)
    if injected is not None:
        return injected
    headers = CIMultiDict(outer.headers)
    headers.popall("ConsistencyLevel", None)  # inner requests carry their own headers
    headers.update(item.get("headers") or {})
    inner = GraphRequest(
        method=method,
        path=split.path,
        query=MultiDict(parse_qsl(split.query, keep_blank_values=True)),
        headers=headers,
        base_url=outer.base_url,
        roles=outer.roles,
        body=item.get("body"),
    )
    return graph.dispatch(inner)


def _render(request_id: str, answer: GraphResponse) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", **answer.headers}
    rendered: dict[str, Any] = {"id": request_id, "status": answer.status, "headers": headers}
    if answer.body is not None:
        rendered["body"] = answer.body
    return rendered


def _requests(body: object) -> list[dict[str, Any]]:
    """The validated inner requests; any envelope problem fails the whole batch with 400."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise GraphError(400, errors.BAD_REQUEST, "Invalid batch payload format: 'requests' must be a list.")
    requests: list[object] = body["requests"]
    if not requests:
        raise GraphError(400, errors.BAD_REQUEST, "Invalid batch payload format: 'requests' is empty.")
    if len(requests) > MAX_REQUESTS:
        raise GraphError(
            400,
            errors.BAD_REQUEST,
            f"Invalid batch payload: {len(requests)} requests; at most {MAX_REQUESTS} are allowed.",
        )
    seen: set[str] = set()
    for index, item in enumerate(requests):
        where = f"requests[{index}]"
        if not isinstance(item, dict):
            raise GraphError(400, errors.BAD_REQUEST, f"{where}: must be an object.")
        for name in ("id", "method", "url"):
            if not isinstance(item.get(name), str) or not item[name]:
                raise GraphError(400, errors.BAD_REQUEST, f"{where}.{name}: a non-empty string is required.")
        if item["id"] in seen:
            raise GraphError(400, errors.BAD_REQUEST, f"{where}.id: '{item['id']}' is used twice.")
        if "://" in item["url"]:
            raise GraphError(400, errors.BAD_REQUEST, f"{where}.url: must be relative, e.g. /groups/{{id}}.")
        if item["method"].upper() in ("POST", "PATCH", "PUT") and "body" in item:
            content_type = {k.lower(): v for k, v in (item.get("headers") or {}).items()}.get("content-type")
            if not content_type:
                raise GraphError(
                    400, errors.BAD_REQUEST, f"{where}.headers: Content-Type is required with a body."
                )
        depends = item.get("dependsOn", [])
        if not isinstance(depends, list) or any(d not in seen for d in depends):
            raise GraphError(
                400, errors.BAD_REQUEST, f"{where}.dependsOn: must list ids of requests before this one."
            )
        headers = item.get("headers")
        if headers is not None and not (
            isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
        ):
            raise GraphError(400, errors.BAD_REQUEST, f"{where}.headers: must map names to strings.")
        seen.add(item["id"])
    return [item for item in requests if isinstance(item, dict)]
