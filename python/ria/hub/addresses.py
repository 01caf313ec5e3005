"""The URLs people can open for a hub: for a hub listening on every address (0.0.0.0), this machine's addresses
rather than 0.0.0.0, which no browser can reach."""

import fcntl
import socket
import struct

WILDCARDS = ("", "0.0.0.0", "::", "*")
_SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def interface_addresses():
    """This machine's IPv4 addresses, one per interface that has one (loopback included), in interface order."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                answer = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:  # no IPv4 address on this interface
                continue
            address = socket.inet_ntoa(answer[20:24])
            if address not in found:
                found.append(address)
    return found


def default_route_address():
    """The address this machine sends from on its default route (nothing is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route lookup happens
            return s.getsockname()[0]
        except OSError:
            return None


def reachable_hosts(host):
    """Hosts to print for a listening address: itself, or for a wildcard the machine's addresses, the default
    route's first and loopback last (a machine with no network still gets 127.0.0.1)."""
    if host not in WILDCARDS:
        return [host]
    addresses = interface_addresses()
    first = default_route_address()
    if first in addresses:
        addresses.remove(first)
        addresses.insert(0, first)
    outside = [a for a in addresses if not a.startswith("127.")]
    inside = [a for a in addresses if a.startswith("127.")] or ["127.0.0.1"]
    return outside + inside


def url(host, port, scheme="http"):
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def local_host(host):
    """The address a command on this machine uses to reach a hub listening on `host`."""
    if host in ("", "0.0.0.0", "*"):
        return "127.0.0.1"
    return "::1" if host == "::" else host
