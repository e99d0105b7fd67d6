"""Download a dataset from an http(s) URL without letting the URL reach into our own network (SSRF).

Pure Python, no Django: the datasets services validate a URL up front with `validate_url` (an instant
400 for `http://169.254.169.254/`), and the import task calls `download_url`.

How a URL is checked, on the first request and again on every redirect hop:
- http and https only; no user:password@ in the URL; no control characters or whitespace.
- The host is resolved ONCE with socket.getaddrinfo (numeric forms such as `2130706433`, `0x7f000001`
  and `0177.0.0.1` are parsed here, the way inet_aton reads them, without DNS). If ANY address is not a
  public unicast address, the URL is refused: loopback, private (RFC 1918, CGNAT 100.64/10, IPv6 ULA),
  link-local (169.254/16 with the cloud metadata address, fe80::/10), multicast, reserved, unspecified,
  and IPv6 forms that embed such an IPv4 address (::ffff:a.b.c.d, 6to4, NAT64, Teredo). Metadata host
  names (metadata.google.internal, ...) and `localhost` are refused by name.
- The connection goes to the address that was checked (the URL's host only travels in the Host header
  and, for https, in SNI and certificate verification), so DNS rebinding between check and connect
  cannot switch it. Redirects are followed by hand, each hop checked like the first.
- The size cap is checked against Content-Length before reading and enforced on the bytes received;
  timeouts cover connecting, each read, and the whole download.
- Proxy environment variables are ignored on purpose: a proxy would resolve the host itself.

Knobs (also the test seam):
- allow_private=True also allows private addresses (an on-premises data server). Loopback, link-local
  and metadata addresses stay refused.
- allowed_addresses: exact (ip, port) pairs allowed whatever they are. Tests serve files from a local
  http.server and list its one ("127.0.0.1", port); a redirect from it to 169.254.169.254 or to another
  loopback port is still refused.
- `_resolve` is the one function that does DNS; tests replace it (monkeypatch) to map test host names
  to addresses and to count lookups.
"""

from __future__ import annotations

import email.message
import ipaddress
import mimetypes
import os
import posixpath
import re
import socket
import ssl
import time
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import certifi
import urllib3
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, SSLError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import TimeoutError as Urllib3Timeout

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
USER_AGENT = "Studio-dataset-import/1"
CHUNK_BYTES = 64 * 1024
MAX_URL_CHARS = 4096

BLOCKED_HOSTNAMES = frozenset(
    {
        "localhost",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
BLOCKED_SUFFIXES = (".localhost", ".internal", ".localdomain")
# Cloud metadata endpoints that are not link-local: AWS's IPv6 IMDS and Alibaba's.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$"
)
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$")


class FetchError(Exception):
    """A URL that cannot be imported, with a message for the user and a stable code.

    Codes: invalid_url, scheme_not_allowed, credentials_in_url, host_not_allowed, address_not_allowed,
    dns_error, connection_error, tls_error, timeout, http_error, too_many_redirects, too_large.
    """

    def __init__(self, message: str, code: str = "fetch_failed"):
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class FetchResult:
    path: Path
    filename: str
    content_type: str
    size_bytes: int


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # lower-case, IDNA-encoded, no brackets, no trailing dot
    port: int
    request_target: str  # path?query
    host_header: str
    literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None


# ------------------------------------------------------------------------------------------- addresses


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(
    address: str | ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_private: bool = False
) -> str | None:
    """Return why an address may not be fetched from ("a loopback address", ...), or None if it may."""
    ip = ipaddress.ip_address(str(address).split("%", 1)[0]) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.teredo is not None:
            return "a Teredo tunnel address"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            problem = address_problem(embedded, allow_private=allow_private)
            return f"{problem} embedded in IPv6" if problem else None
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "the broadcast address"
    if ip.is_reserved:
        return "a reserved address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    private = ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT) or not ip.is_global
    if private and not allow_private:
        return "a private address"
    return None


def is_public_address(address: str) -> bool:
    """Return whether the address is a public unicast address, safe to fetch from."""
    try:
        return address_problem(address) is None
    except ValueError:
        return False


def _parse_legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Parse the forms inet_aton accepts (1 to 4 parts, each decimal, 0-octal or 0x-hex), or return None."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        if re.fullmatch(r"0[xX][0-9a-fA-F]*", part):
            values.append(int(part[2:] or "0", 16))
        elif re.fullmatch(r"0[0-7]+", part):
            values.append(int(part, 8))
        elif re.fullmatch(r"[0-9]+", part):
            values.append(int(part, 10))
        else:
            return None
    *leading, last = values
    if any(value > 255 for value in leading) or last >= 256 ** (5 - len(values)):
        raise FetchError(f"{host!r} is not a valid IPv4 address", code="invalid_url")
    number = 0
    for value in leading:
        number = number * 256 + value
    number = (number << (8 * (5 - len(values)))) + last
    return ipaddress.IPv4Address(number)


def _parse_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if ":" in host:
        if "%" in host:
            raise FetchError("IPv6 zone identifiers are not allowed in URLs", code="invalid_url")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise FetchError(f"{host!r} is not a valid IPv6 address", code="invalid_url") from None
    if _NUMERIC_HOST.match(host):
        legacy = _parse_legacy_ipv4(host)
        if legacy is not None:
            return legacy
        if host.replace(".", "").isdigit():
            raise FetchError(f"{host!r} is not a valid IPv4 address", code="invalid_url")
    return None


# ------------------------------------------------------------------------------------------------- URLs


def _parse_url(url: str) -> _Target:
    if not isinstance(url, str) or not url.strip():
        raise FetchError("the URL is empty", code="invalid_url")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise FetchError(f"the URL is longer than {MAX_URL_CHARS} characters", code="invalid_url")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise FetchError("the URL contains spaces or control characters", code="invalid_url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise FetchError(f"the URL is not valid: {error}", code="invalid_url") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        shown = f"{scheme}:" if scheme else "a URL without a scheme"
        raise FetchError(f"only http and https URLs can be imported, not {shown}", code="scheme_not_allowed")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise FetchError("URLs with a user name or password are not allowed", code="credentials_in_url")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise FetchError("the URL has no host", code="invalid_url")
    literal = _parse_literal(host)
    if literal is None:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise FetchError(f"{host!r} is not a valid host name", code="invalid_url") from None
        if not _HOSTNAME.match(host):
            raise FetchError(f"{host!r} is not a valid host name", code="invalid_url")
        if host in BLOCKED_HOSTNAMES or host.endswith(BLOCKED_SUFFIXES):
            raise FetchError(f"refusing to fetch from {host}: an internal host name", code="host_not_allowed")
    else:
        host = str(literal)
    port = port or DEFAULT_PORTS[scheme]
    shown_host = f"[{host}]" if ":" in host else host
    host_header = shown_host if port == DEFAULT_PORTS[scheme] else f"{shown_host}:{port}"
    request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(url, scheme, host, port, request_target, host_header, literal)


def _resolve(host: str, port: int) -> list[str]:
    """Resolve a host name to its addresses. The only DNS lookup in this module (tests replace it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _pin(
    target: _Target, *, allow_private: bool, allowed_addresses: Collection[tuple[str, int]]
) -> list[str]:
    """Resolve the target once and check every address; return the addresses to connect to."""
    if target.literal is not None:
        addresses = [str(target.literal)]
    else:
        try:
            addresses = _resolve(target.host, target.port)
        except (OSError, UnicodeError) as error:
            raise FetchError(f"could not resolve {target.host}: {error}", code="dns_error") from None
        if not addresses:
            raise FetchError(f"could not resolve {target.host}", code="dns_error")
    allowed = {(str(ipaddress.ip_address(ip)), int(port)) for ip, port in allowed_addresses}
    for address in addresses:
        plain = str(ipaddress.ip_address(address.split("%", 1)[0]))
        if (plain, target.port) in allowed:
            continue
        problem = address_problem(address, allow_private=allow_private)
        if problem is not None:
            via = "" if target.literal is not None else f" (it resolves to {address})"
            raise FetchError(
                f"refusing to fetch from {target.host}{via}: {problem}", code="address_not_allowed"
            )
    return addresses


def validate_url(
    url: str, *, allow_private: bool = False, allowed_addresses: Collection[tuple[str, int]] = ()
) -> None:
    """Raise FetchError if the URL may not be fetched (checks its first hop, resolving the host once)."""
    _pin(_parse_url(url), allow_private=allow_private, allowed_addresses=allowed_addresses)


# -------------------------------------------------------------------------------------------- download


def _open(target: _Target, address: str, *, timeout: urllib3.Timeout, ca_certs: str | None):
    """Send GET to the pinned address, naming the real host in Host (and SNI + certificate check)."""
    headers = {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "Accept-Encoding": "identity",
    }
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs=ssl.CERT_REQUIRED,
            ca_certs=ca_certs or certifi.where(),
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False, maxsize=1)
    try:
        response = pool.urlopen(
            "GET",
            target.request_target,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
            release_conn=False,
        )
    except BaseException:
        pool.close()
        raise
    return pool, response


def _connect(target: _Target, addresses: list[str], *, timeout: urllib3.Timeout, ca_certs: str | None):
    """Try the checked addresses in order until one accepts the connection."""
    failure = FetchError(f"could not connect to {target.host}", code="connection_error")
    for address in addresses:
        try:
            return _open(target, address, timeout=timeout, ca_certs=ca_certs)
        except SSLError as error:
            raise FetchError(f"TLS failed with {target.host}: {error}", code="tls_error") from None
        # NewConnectionError subclasses ConnectTimeoutError in urllib3, so it goes first.
        except NewConnectionError as error:
            failure = FetchError(f"could not connect to {target.host}: {error}", code="connection_error")
        except ConnectTimeoutError:
            failure = FetchError(f"could not connect to {target.host} in time", code="timeout")
        except Urllib3Timeout:
            raise FetchError(f"{target.host} did not answer in time", code="timeout") from None
        except (ProtocolError, Urllib3Error, OSError) as error:
            failure = FetchError(f"could not connect to {target.host}: {error}", code="connection_error")
    raise failure


def _filename(response, final_url: str, content_type: str) -> str:
    name = ""
    disposition = response.headers.get("Content-Disposition")
    if disposition:
        message = email.message.Message()
        message["Content-Disposition"] = disposition
        name = message.get_filename() or ""
    if not name:
        name = unquote(posixpath.basename(urlsplit(final_url).path))
    return sanitize_filename(name, content_type=content_type)


def sanitize_filename(name: str, *, content_type: str = "") -> str:
    """Return a safe base name: no directories, control or reserved characters, at most 200 characters."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        "_" if unicodedata.category(char)[0] == "C" or char in '<>:"|?*' else char for char in name
    )
    name = name.strip().lstrip(".").strip()
    stem, extension = os.path.splitext(name)
    if len(name) > 200:
        name = stem[: 200 - len(extension[:20])] + extension[:20]
    if not name:
        name = "download"
    if "." not in name and content_type:
        guessed = {"text/csv": ".csv", "text/tab-separated-values": ".tsv", "application/json": ".json"}.get(
            content_type
        ) or mimetypes.guess_extension(content_type)
        if guessed:
            name += guessed
    return name


def download_url(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    timeout_s: float = 30,
    max_redirects: int = 5,
    allow_private: bool = False,
    allowed_addresses: Collection[tuple[str, int]] = (),
    total_timeout_s: float = 3600,
    ca_certs: str | None = None,
) -> FetchResult:
    """Download url to dest (a file path; a directory gets the server's file name in it).

    timeout_s bounds connecting and each read; total_timeout_s the whole download. ca_certs: a CA bundle
    instead of certifi's (a company CA). Raises FetchError; a failed download leaves no file behind.
    """
    deadline = time.monotonic() + total_timeout_s
    current = url
    for _hop in range(max_redirects + 1):
        target = _parse_url(current)
        addresses = _pin(target, allow_private=allow_private, allowed_addresses=allowed_addresses)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"the download took longer than {total_timeout_s:g} s", code="timeout")
        timeout = urllib3.Timeout(connect=min(timeout_s, remaining), read=min(timeout_s, remaining))
        pool, response = _connect(target, addresses, timeout=timeout, ca_certs=ca_certs)
        try:
            if response.status in REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(
                        f"{target.host} answered {response.status} without a Location", "http_error"
                    )
                current = urljoin(current, location)
                continue
            if response.status != 200:
                reason = f" {response.reason}" if response.reason else ""
                raise FetchError(f"the server answered {response.status}{reason}", code="http_error")
            return _save(
                response,
                target,
                Path(dest),
                max_bytes=max_bytes,
                deadline=deadline,
                total_timeout_s=total_timeout_s,
            )
        finally:
            response.release_conn()
            pool.close()
    raise FetchError(f"more than {max_redirects} redirects", code="too_many_redirects")


def _save(response, target: _Target, dest: Path, *, max_bytes: int, deadline: float, total_timeout_s: float):
    content_type = (response.headers.get("Content-Type") or "application/octet-stream").split(";")[0].strip()
    content_type = content_type.lower() or "application/octet-stream"
    declared = response.headers.get("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > max_bytes:
        raise FetchError(
            f"the file is {int(declared):,} bytes, more than the limit of {max_bytes:,} bytes",
            code="too_large",
        )
    filename = _filename(response, target.url, content_type)
    path = dest / filename if dest.is_dir() else dest
    partial = path.with_name(path.name + ".part")
    size = 0
    try:
        with partial.open("wb") as sink:
            # read1, not stream(): stream() waits until a whole chunk arrived, so a server trickling
            # bytes would dodge the wall-clock check. One read still waits up to timeout_s.
            while chunk := response.read1(CHUNK_BYTES, decode_content=True):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(
                        f"the file is larger than the limit of {max_bytes:,} bytes", code="too_large"
                    )
                if time.monotonic() > deadline:
                    raise FetchError(f"the download took longer than {total_timeout_s:g} s", code="timeout")
                sink.write(chunk)
        os.replace(partial, path)
    except Urllib3Timeout:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{target.host} stopped sending data", code="timeout") from None
    except (ProtocolError, Urllib3Error) as error:
        partial.unlink(missing_ok=True)
        raise FetchError(f"the download from {target.host} broke off: {error}", "connection_error") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return FetchResult(path=path, filename=filename, content_type=content_type, size_bytes=size)
