"""Plain HTTP to an API server from a kubeconfig, for benchmarks that drive load or watch fast.

The official client is synchronous and slow per request; a benchmark that creates 1,000 objects
16 at a time, or follows a watch while it does, uses aiohttp with the kubeconfig's credentials
(a bearer token, or a client certificate as the real control plane's admin has) and CA.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yaml


def _context(cluster: Mapping[str, Any], user: Mapping[str, Any]) -> ssl.SSLContext:
    if "certificate-authority-data" in cluster:
        cadata = base64.b64decode(cluster["certificate-authority-data"]).decode()
        context = ssl.create_default_context(cadata=cadata)
    else:
        context = ssl.create_default_context(cafile=cluster.get("certificate-authority"))
    if "client-certificate-data" in user:
        with tempfile.TemporaryDirectory() as folder:
            cert, key = Path(folder, "client.crt"), Path(folder, "client.key")
            cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key.write_bytes(base64.b64decode(user["client-key-data"]))
            context.load_cert_chain(str(cert), str(key))
    return context


def session(kubeconfig: Path) -> tuple[str, aiohttp.ClientSession]:
    """The server's URL and a session signed in as the kubeconfig's (first) user."""
    config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    url = str(cluster["server"])
    headers = {"Authorization": f"Bearer {user['token']}"} if "token" in user else {}
    ssl_context = _context(cluster, user) if url.startswith("https") else None
    connector = aiohttp.TCPConnector(limit=0, ssl=ssl_context if ssl_context is not None else False)
    return url, aiohttp.ClientSession(headers=headers, connector=connector, read_bufsize=1 << 20)


async def create(http: aiohttp.ClientSession, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body) as response:
        if response.status != 201:
            raise AssertionError(f"POST {url}: {response.status} {await response.text()}")
        created: dict[str, Any] = await response.json()
        return created


async def watch(
    http: aiohttp.ClientSession, url: str, resource_version: str
) -> AsyncIterator[dict[str, Any]]:
    """The events of one watch from `resource_version` (bookmarks and ERROR included), until the
    server ends it."""
    params = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true"}
    async with http.get(url, params=params, timeout=aiohttp.ClientTimeout(total=None)) as response:
        if response.status != 200:
            raise AssertionError(f"watch {url}: {response.status} {await response.text()}")
        async for line in response.content:
            if line.strip():
                yield json.loads(line)
