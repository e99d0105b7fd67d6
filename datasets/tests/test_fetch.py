"""datasets.fetch: SSRF-safe downloads. No test reaches the internet: address checks are tested directly,
downloads against a local http.server on 127.0.0.1, whose one (address, port) is allow-listed through the
`allowed_addresses` seam; host names are mapped by replacing `fetch._resolve`."""

import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from datasets import fetch
from datasets.fetch import FetchError, address_problem, download_url, is_public_address, validate_url

CSV = b"a,b\n1,2\n3,4\n"


# ------------------------------------------------------------------------------------------ the server


class Handler(BaseHTTPRequestHandler):
    requests: list[str]  # set per server

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requests.append(self.path)
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        route = getattr(self, "route_" + url.path.strip("/").replace("-", "_").replace(".", "_"), None)
        if route is None:
            self.send_error(404)
            return
        route(query)

    def send_body(self, body: bytes, content_type="text/csv; charset=utf-8", headers=()):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def route_data_csv(self, query):
        self.send_body(CSV)

    def route_host(self, query):
        self.send_body(self.headers["Host"].encode(), "text/plain")

    def route_named(self, query):
        self.send_body(
            CSV, headers=[("Content-Disposition", "attachment; filename*=UTF-8''ventes%20%C3%A9t%C3%A9.csv")]
        )

    def route_evil_name(self, query):
        self.send_body(CSV, headers=[("Content-Disposition", 'attachment; filename="../../etc/passwd"')])

    def route_redirect(self, query):
        self.send_response(int(query.get("code", "302")))
        self.send_header("Location", query["to"])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_loop(self, query):
        self.send_response(302)
        self.send_header("Location", "/loop")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_big_declared(self, query):
        self.send_response(200)
        self.send_header("Content-Length", str(10_000_000))
        self.end_headers()
        self.wfile.write(b"x" * 1000)

    def route_big_stream(self, query):
        # No Content-Length: the body runs until the connection closes.
        self.send_response(200)
        self.end_headers()
        for _ in range(8):
            self.wfile.write(b"y" * 64 * 1024)

    def route_slow_headers(self, query):
        time.sleep(float(query.get("s", "2")))
        self.send_body(CSV)

    def route_trickle(self, query):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(100):
            self.wfile.write(b"z" * 10)
            self.wfile.flush()
            time.sleep(0.1)

    def route_missing(self, query):
        self.send_error(404, "Not Found")


class Server:
    def __init__(self, tls_context=None):
        handler = type("TestHandler", (Handler,), {"requests": []})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        # The client hanging up mid-body (size cap, timeout) is expected; keep the traceback out of the log.
        self.httpd.handle_error = lambda request, client_address: None
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.requests = handler.requests
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls_context else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    @property
    def allowed(self):
        return {("127.0.0.1", self.port)}

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = Server()
    yield running
    running.close()


@pytest.fixture
def other_server():
    running = Server()
    yield running
    running.close()


def download(server: Server, path: str, tmp_path: Path, **kwargs):
    kwargs.setdefault("max_bytes", 1_000_000)
    kwargs.setdefault("allowed_addresses", server.allowed)
    return download_url(server.url(path), tmp_path / "download", **kwargs)


def fetch_error(server: Server, path: str, tmp_path: Path, **kwargs) -> FetchError:
    with pytest.raises(FetchError) as caught:
        download(server, path, tmp_path, **kwargs)
    # A failed download leaves no file, complete or partial.
    assert list(tmp_path.iterdir()) == []
    return caught.value


@pytest.fixture
def no_dns(monkeypatch):
    """Fail the test if anything tries a real DNS lookup."""

    def refuse(host, port):
        raise AssertionError(f"unexpected DNS lookup of {host}")

    monkeypatch.setattr(fetch, "_resolve", refuse)


@pytest.fixture
def fake_dns(monkeypatch):
    """Map test host names to addresses; record every lookup."""
    table: dict[str, list[list[str]]] = {}
    lookups: list[str] = []

    def resolve(host, port):
        lookups.append(host)
        answers = table[host]
        return answers.pop(0) if len(answers) > 1 else answers[0]

    monkeypatch.setattr(fetch, "_resolve", resolve)
    return table, lookups


# ------------------------------------------------------------------------------------ address checks


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "a loopback address"),
        ("http://127.255.1.2:8000/x", "a loopback address"),
        ("http://[::1]/", "a loopback address"),
        ("http://169.254.169.254/latest/meta-data", "a link-local address"),
        ("http://169.254.1.1/", "a link-local address"),
        ("http://0x7f000001/", "a loopback address"),
        ("http://2130706433/", "a loopback address"),
        ("http://0177.0.0.1/", "a loopback address"),
        ("http://127.1/", "a loopback address"),
        ("http://0x7f.0.0.1/", "a loopback address"),
        ("http://0/", "the unspecified address"),
        ("http://0.0.0.0:8000/", "the unspecified address"),
        ("http://[::]/", "the unspecified address"),
        ("http://10.0.0.1", "a private address"),
        ("http://172.16.5.4/", "a private address"),
        ("http://192.168.1.1/", "a private address"),
        ("http://100.64.0.1/", "a private address"),
        ("http://[fc00::1]/", "a private address"),
        ("http://[fd12:3456::1]/", "a private address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://[fec0::1]/", "a site-local address"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address embedded in IPv6"),
        (
            "http://[::ffff:169.254.169.254]/",
            "a link-local address (cloud metadata lives there) embedded in IPv6",
        ),
        ("http://[::ffff:10.0.0.1]/", "a private address embedded in IPv6"),
        (
            "http://[64:ff9b::a9fe:a9fe]/",
            "a link-local address (cloud metadata lives there) embedded in IPv6",
        ),
        ("http://[2002:7f00:1::]/", "a loopback address embedded in IPv6"),
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "a Teredo tunnel address"),
        ("http://[fd00:ec2::254]/", "a cloud metadata address"),
        ("http://100.100.100.200/", "a cloud metadata address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://[ff02::1]/", "a multicast address"),
        ("http://255.255.255.255/", "the broadcast address"),
        ("http://240.0.0.1/", "a reserved address"),
    ],
)
def test_urls_to_non_public_addresses_are_refused(url, reason, no_dns):
    with pytest.raises(FetchError) as caught:
        validate_url(url)

    assert caught.value.code == "address_not_allowed"
    assert caught.value.message.startswith("refusing to fetch from ")
    assert reason in caught.value.message


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/",
        "http://LOCALHOST:8000/",
        "http://localhost./",
        "http://api.localhost/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata/",
        "http://instance-data/latest/",
        "http://db.corp.internal/",
    ],
)
def test_internal_host_names_are_refused_without_a_lookup(url, no_dns):
    with pytest.raises(FetchError) as caught:
        validate_url(url)

    assert caught.value.code == "host_not_allowed"
    assert "an internal host name" in caught.value.message


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        ("ftp://x/data.csv", "scheme_not_allowed", "only http and https URLs can be imported, not ftp:"),
        ("file:///etc/passwd", "scheme_not_allowed", "not file:"),
        ("gopher://x/", "scheme_not_allowed", "not gopher:"),
        ("//example.com/data.csv", "scheme_not_allowed", "not a URL without a scheme"),
        ("http://user:pw@host/", "credentials_in_url", "URLs with a user name or password are not allowed"),
        ("https://token@example.com/", "credentials_in_url", "user name or password"),
        ("http://", "invalid_url", "the URL has no host"),
        ("", "invalid_url", "the URL is empty"),
        ("http://exa mple.com/", "invalid_url", "spaces or control characters"),
        ("http://example.com/\r\nHost: evil", "invalid_url", "spaces or control characters"),
        ("http://999.1.1.1/", "invalid_url", "is not a valid IPv4 address"),
        ("http://1.2.3.4.5/", "invalid_url", "is not a valid IPv4 address"),
        ("http://[::1/", "invalid_url", "the URL is not valid"),
        ("http://example.com:99999/", "invalid_url", "the URL is not valid"),
        ("http://[fe80::1%25eth0]/", "invalid_url", "zone identifiers"),
        ("http://exa_mple..com/", "invalid_url", "is not a valid host name"),
    ],
)
def test_bad_urls(url, code, message, no_dns):
    with pytest.raises(FetchError) as caught:
        validate_url(url)

    assert caught.value.code == code
    assert message in caught.value.message


def test_a_host_is_refused_if_any_of_its_addresses_is_private(fake_dns):
    table, lookups = fake_dns
    table["files.example"] = [["93.184.216.34", "10.1.2.3"]]

    with pytest.raises(FetchError) as caught:
        validate_url("https://files.example/data.csv")

    assert caught.value.code == "address_not_allowed"
    assert "files.example (it resolves to 10.1.2.3): a private address" in caught.value.message
    assert lookups == ["files.example"]


def test_a_public_host_passes(fake_dns):
    table, _lookups = fake_dns
    table["files.example"] = [["93.184.216.34", "2606:2800:220:1::1"]]

    validate_url("https://files.example/data.csv")


def test_allow_private_allows_private_networks_but_never_loopback_or_metadata(fake_dns):
    table, _lookups = fake_dns
    table["nas.example"] = [["192.168.1.20"]]

    validate_url("http://nas.example/data.csv", allow_private=True)
    validate_url("http://10.0.0.1/", allow_private=True)
    validate_url("http://[fd00::1]/", allow_private=True)
    for url in ("http://127.0.0.1/", "http://169.254.169.254/", "http://[::1]/", "http://[fd00:ec2::254]/"):
        with pytest.raises(FetchError, match="refusing"):
            validate_url(url, allow_private=True)


def test_dns_failure(monkeypatch):
    def fail(host, port):
        raise OSError("Name or service not known")

    monkeypatch.setattr(fetch, "_resolve", fail)

    with pytest.raises(FetchError) as caught:
        validate_url("http://nowhere.example/")

    assert caught.value.code == "dns_error"
    assert "could not resolve nowhere.example" in caught.value.message


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("100.64.1.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("not an address", False),
    ],
)
def test_is_public_address(address, public):
    assert is_public_address(address) is public


def test_address_problem_is_none_for_public_addresses():
    assert address_problem("1.1.1.1") is None
    assert address_problem("10.0.0.1") == "a private address"
    assert address_problem("10.0.0.1", allow_private=True) is None


# ------------------------------------------------------------------------------------------ downloads


def test_download(server, tmp_path):
    result = download(server, "/data.csv", tmp_path)

    assert result.path == tmp_path / "download"
    assert result.path.read_bytes() == CSV
    assert result.filename == "data.csv"
    assert result.content_type == "text/csv"
    assert result.size_bytes == len(CSV)


def test_download_into_a_directory_uses_the_servers_file_name(server, tmp_path):
    result = download_url(server.url("/named"), tmp_path, max_bytes=1000, allowed_addresses=server.allowed)

    assert result.filename == "ventes été.csv"
    assert result.path == tmp_path / "ventes été.csv"
    assert result.path.read_bytes() == CSV


def test_file_name_from_the_server_cannot_climb_out(server, tmp_path):
    result = download_url(
        server.url("/evil-name"), tmp_path, max_bytes=1000, allowed_addresses=server.allowed
    )

    # The extension comes from Content-Type when the name has none.
    assert result.filename == "passwd.csv"
    assert result.path == tmp_path / "passwd.csv"


def test_the_local_server_itself_is_refused_without_the_allowlist(server, tmp_path):
    error = fetch_error(server, "/data.csv", tmp_path, allowed_addresses=())

    assert error.code == "address_not_allowed"
    assert "a loopback address" in error.message
    assert server.requests == []


def test_the_host_name_is_sent_while_connecting_to_the_checked_address(server, tmp_path, fake_dns):
    table, lookups = fake_dns
    # DNS rebinding: the second answer would point at the metadata service. There is no second lookup.
    table["files.test"] = [["127.0.0.1"], ["169.254.169.254"]]

    result = download_url(
        f"http://files.test:{server.port}/host",
        tmp_path / "host",
        max_bytes=1000,
        allowed_addresses=server.allowed,
    )

    assert result.path.read_bytes() == f"files.test:{server.port}".encode()
    assert lookups == ["files.test"]


@pytest.mark.parametrize(
    ("location", "code", "message"),
    [
        ("http://169.254.169.254/latest/meta-data/", "address_not_allowed", "a link-local address"),
        ("http://127.0.0.1:1/", "address_not_allowed", "a loopback address"),
        ("http://[::1]/", "address_not_allowed", "a loopback address"),
        ("http://0x7f000001/", "address_not_allowed", "a loopback address"),
        ("http://10.0.0.1/", "address_not_allowed", "a private address"),
        ("http://localhost/", "host_not_allowed", "an internal host name"),
        ("http://metadata.google.internal/", "host_not_allowed", "an internal host name"),
        ("file:///etc/passwd", "scheme_not_allowed", "not file:"),
        ("http://user:pw@example.com/", "credentials_in_url", "user name or password"),
    ],
)
def test_redirects_to_forbidden_places_are_refused(server, tmp_path, no_dns, location, code, message):
    error = fetch_error(server, f"/redirect?to={location}", tmp_path)

    assert error.code == code
    assert message in error.message
    assert len(server.requests) == 1


def test_redirect_to_another_loopback_port_is_refused(server, other_server, tmp_path):
    error = fetch_error(server, f"/redirect?to={other_server.url('/data.csv')}&code=307", tmp_path)

    assert error.code == "address_not_allowed"
    assert "a loopback address" in error.message
    assert other_server.requests == []


def test_allowed_redirects_are_followed(server, tmp_path):
    result = download(server, "/redirect?to=/redirect%3Fto%3D/data.csv%26code%3D301", tmp_path)

    assert result.path.read_bytes() == CSV
    assert result.filename == "data.csv"
    assert server.requests == [
        "/redirect?to=/redirect%3Fto%3D/data.csv%26code%3D301",
        "/redirect?to=/data.csv&code=301",
        "/data.csv",
    ]


def test_redirect_loop(server, tmp_path):
    error = fetch_error(server, "/loop", tmp_path, max_redirects=3)

    assert error.code == "too_many_redirects"
    assert "more than 3 redirects" in error.message
    assert len(server.requests) == 4


def test_http_errors(server, tmp_path):
    error = fetch_error(server, "/missing", tmp_path)

    assert error.code == "http_error"
    assert "the server answered 404" in error.message


def test_declared_size_over_the_cap_is_refused_before_reading(server, tmp_path):
    error = fetch_error(server, "/big-declared", tmp_path, max_bytes=1_000_000)

    assert error.code == "too_large"
    assert "10,000,000 bytes, more than the limit of 1,000,000 bytes" in error.message


def test_size_cap_is_enforced_while_streaming(server, tmp_path):
    error = fetch_error(server, "/big-stream", tmp_path, max_bytes=100_000)

    assert error.code == "too_large"
    assert "larger than the limit of 100,000 bytes" in error.message


def test_read_timeout(server, tmp_path):
    error = fetch_error(server, "/slow-headers?s=2", tmp_path, timeout_s=0.3)

    assert error.code == "timeout"
    assert "did not answer in time" in error.message


def test_total_timeout(server, tmp_path):
    error = fetch_error(server, "/trickle", tmp_path, timeout_s=5, total_timeout_s=0.5)

    assert error.code == "timeout"
    assert "took longer than 0.5 s" in error.message


def test_connection_refused(tmp_path, server):
    port = server.port
    server.close()

    with pytest.raises(FetchError) as caught:
        download_url(
            f"http://127.0.0.1:{port}/", tmp_path / "x", max_bytes=10, allowed_addresses={("127.0.0.1", port)}
        )

    assert caught.value.code == "connection_error"


def test_sanitize_filename():
    assert fetch.sanitize_filename("../../a/b.csv") == "b.csv"
    assert fetch.sanitize_filename("..\\..\\evil.csv") == "evil.csv"
    assert fetch.sanitize_filename(".hidden.csv") == "hidden.csv"
    assert fetch.sanitize_filename("a\x00b\nc.csv") == "a_b_c.csv"
    assert fetch.sanitize_filename("") == "download"
    assert fetch.sanitize_filename("data", content_type="text/csv") == "data.csv"
    assert len(fetch.sanitize_filename("x" * 500 + ".csv")) == 200
    assert fetch.sanitize_filename("x" * 500 + ".csv").endswith(".csv")


# ------------------------------------------------------------------------------------------------- TLS


@pytest.fixture
def tls_server(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("needs the openssl command to make a test certificate (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
            "-subj", "/CN=files.test", "-addext", "subjectAltName=DNS:files.test",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    running = Server(tls_context=context)
    running.ca_certs = str(folder / "cert.pem")
    yield running
    running.close()


def test_https_verifies_the_certificate_for_the_host_name_while_connecting_to_the_pinned_address(
    tls_server, tmp_path, fake_dns
):
    table, lookups = fake_dns
    table["files.test"] = [["127.0.0.1"]]
    table["other.test"] = [["127.0.0.1"]]

    result = download_url(
        f"https://files.test:{tls_server.port}/host",
        tmp_path / "ok",
        max_bytes=1000,
        allowed_addresses=tls_server.allowed,
        ca_certs=tls_server.ca_certs,
    )
    with pytest.raises(FetchError) as caught:
        download_url(
            f"https://other.test:{tls_server.port}/host",
            tmp_path / "bad",
            max_bytes=1000,
            allowed_addresses=tls_server.allowed,
            ca_certs=tls_server.ca_certs,
        )

    assert result.path.read_bytes() == f"files.test:{tls_server.port}".encode()
    assert caught.value.code == "tls_error"
    assert "other.test" in caught.value.message
    assert not (tmp_path / "bad").exists()
