"""Lists and watches over asyncio: what the informers of `informer` read the API server with.

Holds `KubeStream`: `list` (every page of a collection, and the list's resourceVersion) and
`watch` (the events of a collection from a resourceVersion, until the server ends the stream).
It speaks HTTP with aiohttp on the event loop (and decodes pages and watch lines with orjson,
in C, as `transport` does), not through the official client, because a watch
holds its connection open for minutes: in the official client's threads (`KubeAdapter`'s) each
watch would hold a thread, and a blocked read cannot be cancelled at shutdown. Identity and TLS
are the official client's configuration (the same one `KubeAdapter` and kopf use), the token
re-read at each connection (exec plugins and in-cluster tokens rotate). Failures are the typed
`KubeError`s of `errors`; a watch's in-stream ERROR (410 Gone: the resourceVersion is too old)
is raised as the error its Status names. It must not know bindings, namespaces or roles.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import orjson
from kubernetes import client

from entra_rbac.adapters.kube.errors import error_from_response, unavailable

# A list page: bounded, so a huge collection never means one huge answer.
PAGE_SIZE = 500
# Seconds a watch stays open before the server ends it (then it resumes from where it was):
# short enough that a half-open connection (a load balancer dropping idle flows) is noticed.
WATCH_SECONDS = 300
# Connect and first-byte timeout; a watch's reads may then wait up to WATCH_SECONDS + this.
CONNECT_TIMEOUT = 10.0
# A watch event is one line holding a whole object (an EntraGroupBinding may be close to 1 MB);
# aiohttp reads lines up to twice its read buffer, whose 256 KiB default is too small.
READ_BUFFER = 4 * 1024 * 1024


def _ssl_context(configuration: client.Configuration) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class KubeStream:
    """List and watch requests with the official client's identity; one session, opened lazily."""

    def __init__(self, configuration: client.Configuration) -> None:
        self.configuration = configuration
        self._session: aiohttp.ClientSession | None = None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        # Calls the configuration's refresh hook: a rotated token is picked up at each request.
        token = self.configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            headers["Authorization"] = token
        elif self.configuration.username:
            headers["Authorization"] = aiohttp.BasicAuth(
                self.configuration.username, self.configuration.password or ""
            ).encode()
        return headers

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=_ssl_context(self.configuration))
            self._session = aiohttp.ClientSession(
                connector=connector,
                read_bufsize=READ_BUFFER,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(
        self, path: str, params: Mapping[str, str], *, what: str, limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        try:
            # The host may carry a path (an API proxy's prefix): joined, not resolved against.
            response = await self._get_session().get(
                self.configuration.host.rstrip("/") + path,
                params=dict(params),
                headers=self._headers(),
                timeout=limits,
                proxy=self.configuration.proxy or None,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise unavailable(f"{type(error).__name__}: {error}", what) from None
        if response.status >= 400:
            body = await response.read()
            response.release()
            raise error_from_response(response.status, body, what)
        return response

    async def list(
        self,
        path: str,
        *,
        what: str,
        query: Mapping[str, str] | None = None,
        page_size: int = PAGE_SIZE,
        each: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        decode: Callable[[bytes], Any] | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item (page by page; a failed page fails the whole list) and the list's
        resourceVersion. `each`, when given, is applied to every item of a page before the next
        page is read, so only its results are held (the decoded pages are not). `decode`, when
        given, reads each page's bytes instead of `orjson.loads`."""
        items: list[dict[str, Any]] = []
        params = {**(query or {}), "limit": str(page_size)}
        timeout = aiohttp.ClientTimeout(total=60, connect=CONNECT_TIMEOUT)
        while True:
            response = await self._get(path, params, what=what, limits=timeout)
            try:
                page = (decode or orjson.loads)(await response.read())
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as error:
                raise unavailable(f"{type(error).__name__}: {error}", what) from None
            finally:
                response.release()
            found = page.get("items") or []
            items.extend(map(each, found) if each is not None else found)
            meta = page.get("metadata") or {}
            del page, found  # this page's decoded items go before the next page is read
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion") or "")
            params = {**params, "continue": str(meta["continue"])}

    async def watch(
        self,
        path: str,
        *,
        what: str,
        resource_version: str,
        query: Mapping[str, str] | None = None,
        seconds: int = WATCH_SECONDS,
        decode: Callable[[bytes], Any] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """The watch events (`{"type", "object"}`) from `resource_version` on, bookmarks included,
        until the server ends the stream (after `seconds`). An ERROR event is raised as the error
        its Status names (`GoneError` for 410: list again). `decode`, when given, reads each event's
        bytes instead of `orjson.loads`."""
        params = {
            **(query or {}),
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(max(1, seconds)),
        }
        timeout = aiohttp.ClientTimeout(
            total=None, connect=CONNECT_TIMEOUT, sock_read=seconds + CONNECT_TIMEOUT
        )
        response = await self._get(path, params, what=what, limits=timeout)
        try:
            async for line in response.content:
                if not line.strip():
                    continue
                event = (decode or orjson.loads)(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise error_from_response(int(status.get("code") or 500), json.dumps(status), what)
                yield event
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as error:
            raise unavailable(f"{type(error).__name__}: {error}", what) from None
        finally:
            response.release()
