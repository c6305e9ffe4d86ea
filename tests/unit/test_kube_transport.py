"""The transport's shortcut past urllib3's pool manager sends exactly the request target the
pool manager would have sent (its `parse_url` normalises paths and queries)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.client import ApiClient, Configuration
from urllib3.util import parse_url

from entra_rbac.adapters.kube.transport import _Pools, unchanged_by_parsing

SERVER = "https://127.0.0.1:6443"
# What a request target is built from, the awkward parts included: escapes in both cases,
# dot segments, spaces, non-ASCII, a fragment, a second `?`.
PIECES = st.sampled_from(
    [
        "a",
        "Z",
        "9",
        "-",
        ".",
        "..",
        "_",
        "~",
        ":",
        "@",
        "=",
        "&",
        "%2F",
        "%2f",
        "%",
        "%G1",
        " ",
        "é",
        "#",
        "?",
        "/",
        "'",
        "+",
        "[",
        "\\",
    ]
)


@given(st.lists(PIECES, max_size=12).map("".join))
def test_a_target_taken_as_it_is_is_the_one_the_pool_manager_sends(tail: str) -> None:
    target = "/" + tail
    if unchanged_by_parsing(target):
        assert parse_url(SERVER + target).request_uri == target


@pytest.mark.parametrize(
    "target",
    [
        "/api/v1/namespaces",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings/egb:payments:edit",
        "/apis/rbac.authorization.k8s.io/v1/rolebindings?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dentra-rbac&limit=500",
        "/apis/entra-rbac.io/v1alpha1/entragroupbindings?watch=true&resourceVersion=12&allowWatchBookmarks=true",
    ],
)
def test_the_operators_requests_are_taken_as_they_are(target: str) -> None:
    assert unchanged_by_parsing(target)


@pytest.mark.parametrize("target", ["/a/../b", "/a/./b", "/a b", "/a%2fb", "/a?x=%2f", "/a#f", "/é"])
def test_targets_parsing_would_change_go_the_general_way(target: str) -> None:
    assert not unchanged_by_parsing(target)


def test_a_redirect_from_the_direct_pool_is_followed_by_the_pool_manager() -> None:
    asked: list[str] = []

    class Redirecting(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            if self.path == "/old":
                self.send_response(307)
                self.send_header("Location", "/new")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"at": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    api_client = ApiClient(Configuration(host=host))
    try:
        pools = _Pools(api_client)
        response = pools.send("GET", host + "/old", None, {}, urllib3.Timeout(total=5))
        assert json.loads(response.data) == {"at": "/new"}
        # The direct pool's answer was the redirect; the pool manager asked again and followed it.
        assert asked == ["/old", "/old", "/new"]
    finally:
        api_client.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
