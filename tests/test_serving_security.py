"""Server-side request forgery: URLs the service must refuse without opening any connection."""

from __future__ import annotations

import ipaddress
import time

import pytest
from test_serving_support import (
    Canary,
    RemoteFiles,
    connect_spy,  # noqa: F401  (fixture)
    serve,
    shared_server,
)

from ocrflow import Limits
from ocrflow.fetch import AllowList, FetchError, blocked_reason, fetch

requests = pytest.importorskip("requests")


@pytest.fixture(scope="module")
def live(pipeline):
    return shared_server(pipeline)  # default settings: no allow-list


def post(server, payload):
    return requests.post(f"{server.url}/ocr", json=payload, timeout=30)


def refused(resp, *words):
    assert 400 <= resp.status_code < 500, resp.text
    body = resp.json()
    assert body["errorCode"] == resp.status_code and body["logId"]
    for word in words:
        assert word.lower() in body["errorMsg"].lower(), body["errorMsg"]


@pytest.mark.parametrize("url, words", [
    ("http://10.0.0.1/scan.png", ["private"]),
    ("http://169.254.169.254/latest/meta-data/iam.png", ["link-local"]),
    ("http://[fe80::1]/a.png", ["link-local"]),
    ("http://[::ffff:10.0.0.1]/a.png", ["private"]),
    ("http://192.168.1.1/a.png", ["private"]),
    ("http://172.16.5.4/a.png", ["private"]),
    ("http://[fc00::1]/a.png", ["private"]),
    ("http://0.0.0.0/a.png", ["unspecified"]),
    ("http://224.0.0.1/a.png", ["multicast"]),
    ("http://240.0.0.1/a.png", ["reserved"]),
    ("http://100.64.0.1/a.png", ["not publicly routable"]),
    ("file:///etc/passwd", ["http and https"]),
    ("ftp://example.com/a.png", ["http and https"]),
    ("gopher://127.0.0.1:25/a.png", ["http and https"]),
    ("http://user:secret@example.com/a.png", ["credentials"]),
])
def test_refused_without_connecting(live, connect_spy, url, words):  # noqa: F811
    start = time.monotonic()
    refused(post(live, {"file": url, "fileType": 1}), *words)
    assert time.monotonic() - start < 2  # refused from the address, not after a connect timeout
    assert connect_spy == []


def test_loopback_refused_and_never_reached(live, connect_spy):  # noqa: F811
    with Canary("127.0.0.1") as canary:
        for host in ("127.0.0.1", "localhost", "127.1", "2130706433", "[::1]"):
            resp = post(live, {"file": f"http://{host}:{canary.port}/x.png", "fileType": 1})
            refused(resp)
            assert resp.status_code == 403, resp.text
        time.sleep(0.2)
    assert canary.connections == 0
    assert connect_spy == []


def test_redirect_to_loopback_refused(pipeline, connect_spy):  # noqa: F811
    """An allowed server (127.0.0.1) redirects to another loopback address (127.0.0.2), to a private
    address and to file://: every hop is checked again; the target sees nothing."""
    with RemoteFiles("127.0.0.1") as files, Canary("127.0.0.2") as canary, \
            serve(pipeline, url_allow=("127.0.0.1/32",)) as server:
        target = f"http://127.0.0.2:{canary.port}/secret.png"
        resp = post(server, {"file": f"{files.url}/redirect?to={target}", "fileType": 1})
        refused(resp, "127.0.0.2", "loopback")
        assert resp.status_code == 403
        for to, status in (("http://10.0.0.1/x.png", 403), ("http://169.254.169.254/x.png", 403),
                           ("file:///etc/passwd", 422)):
            refused(post(server, {"file": f"{files.url}/redirect?to={to}", "fileType": 1}))
            assert post(server, {"file": f"{files.url}/redirect?to={to}", "fileType": 1}).status_code == status
        time.sleep(0.2)
        assert canary.connections == 0
        assert files.requests and all(p.startswith("/redirect") for p in files.requests)
    assert {address for address, _ in connect_spy} == {"127.0.0.1"}  # only the allowed server


def test_allow_list_by_network_and_host():
    allow = AllowList(["10.1.0.0/16", "files.internal", ".corp.example"])
    assert allow.permits_ip(ipaddress.ip_address("10.1.2.3"))
    assert not allow.permits_ip(ipaddress.ip_address("10.2.0.1"))
    assert allow.permits_host("files.internal") and allow.permits_host("a.corp.example")
    assert not allow.permits_host("corp.example.evil.com")


@pytest.mark.parametrize("address, blocked", [
    ("8.8.8.8", False), ("2606:4700:4700::1111", False), ("127.0.0.1", True), ("::1", True),
    ("169.254.169.254", True), ("fd00:ec2::254", True), ("::ffff:127.0.0.1", True), ("64:ff9b::a00:1", True),
    ("2002:7f00:1::", True), ("198.18.0.1", True), ("255.255.255.255", True),
])
def test_blocked_reason(address, blocked):
    assert (blocked_reason(ipaddress.ip_address(address)) is not None) is blocked


def test_fetch_refuses_before_connecting(connect_spy):  # noqa: F811
    for url in ("http://127.0.0.1:9/x", "http://10.0.0.1/x", "http://169.254.169.254/x"):
        with pytest.raises(FetchError) as err:
            fetch(url, Limits())
        assert err.value.status == 403
    assert connect_spy == []
