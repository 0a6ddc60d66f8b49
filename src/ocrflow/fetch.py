"""Fetching a user's URL without opening a way in (server-side request forgery): the one client for
URLs given as input, by predict() and by the service alike (model downloads have their own, models/archive.py).

Rules: http and https only; no credentials in the URL; the host is resolved first and EVERY address
it resolves to must be public (not loopback, private, link-local / cloud metadata, multicast,
unspecified, reserved, shared or otherwise not globally routable, IPv4 hidden in IPv6 included)
unless the allow-list permits it; then we connect to that checked address ourselves (no second DNS
lookup a rebinding attack could answer differently). Redirects are followed by hand, at most N, and
each hop goes through the same checks. Connect, read and total timeouts, and a byte cap. Proxy
environment variables are ignored on purpose.

Errors are FetchError(status, message), an InputError: 422 for a malformed or unsupported URL, 403
for an address we refuse, 413 for a file over the cap, 502 for a remote that fails, 504 for one
that is too slow (the service answers with that status).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse

from .errors import InputError
from .limits import Limits

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 64 * 1024
# NAT64 (RFC 6052) and the IPv4 it carries: checked like the IPv4 address itself.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchError(InputError):
    """A URL we will not or could not fetch; status is the HTTP status the service answers with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class AllowList:
    """Entries: a CIDR or IP ('127.0.0.1', '10.0.0.0/8'), a host name ('files.internal'), or a
    domain suffix with a leading dot ('.corp.example' allows every host under it)."""

    def __init__(self, entries: tuple[str, ...] | list[str] = ()):
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.hosts: set[str] = set()
        self.suffixes: list[str] = []
        for entry in entries:
            text = entry.strip().lower()
            try:
                self.networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            if text.startswith("."):
                self.suffixes.append(text.rstrip("."))
            else:
                self.hosts.add(text.rstrip("."))

    def permits_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(host.endswith(s) for s in self.suffixes)

    def permits_ip(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


def blocked_reason(ip: IPAddress) -> str | None:
    """Why an address must not be fetched from, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.teredo:
            return "a Teredo tunnel address"
        if embedded is not None:
            reason = blocked_reason(embedded)
            return f"{reason} (inside an IPv6 address)" if reason else None
    checks = (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address (cloud metadata lives there)"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private-network address"),
    )
    for attr, reason in checks:
        if getattr(ip, attr):
            return reason
    if not ip.is_global:
        return "an address that is not publicly routable"
    return None


def check_url(url: str) -> urllib.parse.SplitResult:
    """Syntax checks that need no network: scheme, host, port, credentials."""
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise FetchError(422, "malformed URL: it holds characters that cannot be encoded (a lone surrogate)") from None
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(422, f"malformed URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError(422, f"only http and https URLs are allowed, not {parts.scheme or 'a bare path'}:")
    if not parts.hostname:
        raise FetchError(422, "the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise FetchError(422, "URLs with credentials (user:password@) are not accepted")
    if port == 0:
        raise FetchError(422, "the URL's port must not be 0")
    return parts


def resolve(host: str, port: int) -> list[str]:
    """Every address the host name resolves to (numbers resolve to themselves)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise FetchError(502, f"cannot resolve host {host!r}: {exc}") from None
    seen: list[str] = []
    for info in infos:
        addr = info[4][0].split("%")[0]  # drop an IPv6 zone
        if addr not in seen:
            seen.append(addr)
    if not seen:
        raise FetchError(502, f"host {host!r} has no address")
    return seen


def checked_addresses(host: str, port: int, allow: AllowList) -> list[str]:
    """Resolve host and refuse (403) when any address it has is not public and not allowed."""
    host_allowed = allow.permits_host(host)
    addresses = resolve(host, port)
    for addr in addresses:
        ip = ipaddress.ip_address(addr)
        reason = blocked_reason(ip)
        if reason and not host_allowed and not allow.permits_ip(ip):
            shown = host if host == addr else f"{host} ({addr})"
            raise FetchError(403, f"refusing to fetch from {shown}: {reason}; the url_allow setting "
                                  "can permit it")
    return addresses


def _open_socket(address: str, port: int, timeout: float) -> socket.socket:
    """The only place a connection is opened (a seam for tests)."""
    return socket.create_connection((address, port), timeout=timeout)


def _remaining(deadline: float, url: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(504, f"fetching {url} took longer than the time limit (url_timeout)")
    return left


def _connect(parts: urllib.parse.SplitResult, addresses: list[str], limits: Limits, deadline: float, url: str):
    host = parts.hostname
    https = parts.scheme.lower() == "https"
    port = parts.port or (443 if https else 80)
    last: Exception | None = None
    for addr in addresses:
        try:
            sock = _open_socket(addr, port, min(limits.url_connect_timeout, _remaining(deadline, url)))
        except OSError as exc:  # TimeoutError included
            last = exc
            continue
        watchdog = _watchdog(sock, deadline)
        try:
            if https:
                sock.settimeout(min(limits.url_read_timeout, _remaining(deadline, url)))
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        except ssl.SSLError as exc:
            watchdog.cancel()
            sock.close()
            raise FetchError(502, f"TLS with {host} failed: {exc.reason or exc}") from None
        except (TimeoutError, OSError) as exc:
            watchdog.cancel()
            sock.close()
            if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
                raise FetchError(504, f"TLS handshake with {host} timed out") from None
            raise FetchError(502, f"TLS with {host} failed: {exc}") from None
        cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
        conn = cls(host, port, timeout=limits.url_read_timeout)
        conn.sock = sock  # already connected to the address we checked
        conn.watchdog = watchdog
        return conn
    if isinstance(last, TimeoutError):
        raise FetchError(504, f"connecting to {host}:{port} timed out")
    raise FetchError(502, f"cannot connect to {host}:{port}: {getattr(last, 'strerror', None) or last}")


def _watchdog(sock: socket.socket, deadline: float) -> threading.Timer:
    """Shut the connection down at the deadline: a server that sends a byte now and then never
    trips the read timeout, and one read of a buffered response can wait for many bytes."""
    def stop() -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), stop)
    timer.daemon = True
    timer.start()
    return timer


def _byte_limit(limits: Limits) -> str:
    return f"{limits.max_bytes} byte limit (max_bytes; url_max_bytes in the service)"


def _target(parts: urllib.parse.SplitResult) -> str:
    path = urllib.parse.quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = urllib.parse.quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return path + (f"?{query}" if query else "")


def fetch(url: str, limits: Limits = Limits(), deadline: float | None = None) -> bytes:
    """The body of url (following redirects), under every rule of the module docstring."""
    start = time.monotonic()
    deadline = min(deadline or float("inf"), start + limits.url_timeout)
    allow = AllowList(limits.url_allow)
    current = url
    for _hop in range(limits.url_max_redirects + 1):
        parts = check_url(current)
        https = parts.scheme.lower() == "https"
        port = parts.port or (443 if https else 80)
        addresses = checked_addresses(parts.hostname, port, allow)
        _remaining(deadline, url)
        conn = _connect(parts, addresses, limits, deadline, url)
        try:
            try:
                # Each receive waits at most this long; the total deadline is checked between chunks.
                conn.sock.settimeout(min(limits.url_read_timeout, _remaining(deadline, url)))
                conn.request("GET", _target(parts), headers={
                    "User-Agent": "ocrflow", "Accept": "*/*", "Accept-Encoding": "identity", "Connection": "close"})
                resp = conn.getresponse()
                if resp.status in REDIRECTS:
                    location = resp.getheader("Location")
                    if not location:
                        raise FetchError(502, f"{current} answered HTTP {resp.status} without a Location")
                    current = urllib.parse.urljoin(current, location.strip())
                    continue
                if not 200 <= resp.status < 300:
                    raise FetchError(502, f"{current} answered HTTP {resp.status} {resp.reason}".rstrip())
                encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
                if encoding not in ("identity", ""):
                    raise FetchError(502, f"{current} sent Content-Encoding {encoding!r}, which is not accepted")
                length = (resp.getheader("Content-Length") or "").strip()
                if length.isascii() and length.isdigit() and int(length) > limits.max_bytes:
                    raise FetchError(413, f"{current} is {int(length)} bytes, above the {_byte_limit(limits)}")
                chunks, size = [], 0
                while True:
                    _remaining(deadline, url)
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limits.max_bytes:
                        raise FetchError(413, f"{current} is larger than the {_byte_limit(limits)}")
                    chunks.append(chunk)
                return b"".join(chunks)
            except FetchError:
                raise
            except TimeoutError:
                raise FetchError(504, f"{current} did not answer in time") from None
            except (http.client.HTTPException, OSError, ValueError) as exc:  # ValueError: a bad header
                if time.monotonic() >= deadline:  # the watchdog shut the connection
                    raise FetchError(504, f"fetching {url} took longer than the time limit (url_timeout)") from None
                raise FetchError(502, f"{current}: bad answer ({type(exc).__name__}: {exc})") from None
        finally:
            conn.watchdog.cancel()
            conn.close()
    raise FetchError(502, f"{url} redirected more than {limits.url_max_redirects} times (url_max_redirects)")
