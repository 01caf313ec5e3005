"""wss:// with certificate verification: a CA made here, a wrong CA, and insecure mode."""

import ssl
import subprocess

import pytest

from helpers import wait_until
from hub_server import TOKEN, HubServer
from test_websocket_iq_sink import WAIT, idle_sink_flowgraph


def make_ca(folder, name):
    key, crt = folder / f"{name}.key", folder / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    f"/CN={name}", "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    return key, crt


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "test-ca")
    _, other_ca = make_ca(d, "other-ca")
    key, crt = make_host_cert(d, "hub", "127.0.0.1", "IP:127.0.0.1,DNS:localhost", ca)
    other_key, other_crt = make_host_cert(d, "other", "hub.example.org", "DNS:hub.example.org", ca)  # right CA, other host
    return {"ca": ca[1], "other_ca": other_ca, "cert": crt, "key": key,
            "other_host_cert": other_crt, "other_host_key": other_key}


def make_host_cert(folder, name, common_name, alt_names, ca):
    ca_key, ca_crt = ca
    key, csr, crt, ext = (folder / f"{name}.{suffix}" for suffix in ("key", "csr", "crt", "ext"))
    ext.write_text(f"subjectAltName={alt_names}\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={common_name}",
                    "-keyout", str(key), "-out", str(csr)], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
                    "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt)],
                   check=True, capture_output=True)
    return key, crt


@pytest.fixture
def tls_hub(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["cert"], pki["key"])
    server = HubServer(token=TOKEN, ssl_context=ctx).start()
    yield server
    server.stop()


def connect_sink(flowgraphs, url, **kwargs):
    tb, sink = idle_sink_flowgraph(url, **kwargs)
    flowgraphs(tb)
    return sink


def test_trusted_ca_is_accepted(tls_hub, pki, flowgraphs):
    connect_sink(flowgraphs, tls_hub.url(), ca_file=str(pki["ca"]))
    assert tls_hub.wait_text("heartbeat", WAIT)


def test_wrong_ca_gives_a_clear_error(tls_hub, pki, flowgraphs):
    sink = connect_sink(flowgraphs, tls_hub.url(), ca_file=str(pki["other_ca"]))
    assert wait_until(lambda: "TLS certificate is not trusted" in sink.last_error(), WAIT)
    assert "give the hub's CA file" in sink.last_error()
    assert tls_hub.connections == 0


def test_default_trust_store_rejects_a_private_ca(tls_hub, flowgraphs):
    sink = connect_sink(flowgraphs, tls_hub.url())
    assert wait_until(lambda: "not trusted" in sink.last_error(), WAIT)


def test_insecure_mode_really_skips_verification(tls_hub, flowgraphs):
    connect_sink(flowgraphs, tls_hub.url(), insecure=True)
    assert tls_hub.wait_text("heartbeat", WAIT)


def test_a_certificate_for_another_host_is_refused(pki, flowgraphs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["other_host_cert"], pki["other_host_key"])
    server = HubServer(token=TOKEN, ssl_context=ctx).start()
    try:
        sink = connect_sink(flowgraphs, server.url(), ca_file=str(pki["ca"]))
        assert wait_until(lambda: "not trusted (IP address mismatch)" in sink.last_error(), WAIT)
        assert server.connections == 0
    finally:
        server.stop()


def test_an_unreadable_ca_file_is_named_at_once(tmp_path):
    missing = tmp_path / "nope.crt"
    with pytest.raises(ValueError, match=f"ca_file: cannot read '{missing}'"):
        idle_sink_flowgraph("wss://127.0.0.1:9/x", ca_file=str(missing))


def test_a_ca_file_without_a_certificate_is_named_at_once(tmp_path):
    not_a_cert = tmp_path / "notes.txt"
    not_a_cert.write_text("this is not a certificate\n")
    with pytest.raises(ValueError, match="ca_file: .* holds no usable CA certificate"):
        idle_sink_flowgraph("wss://127.0.0.1:9/x", ca_file=str(not_a_cert))
