"""Raw frames on a test namespace's link, with their 802.1Q tag, without tcpdump.

An AF_PACKET socket made inside the namespace (pyroute2 opens it there and hands it
back) sends frames as given, tagged in-band when asked, and reads each frame with the
kernel's PACKET_AUXDATA: the kernel strips a received tag into metadata before taps
see the frame, and the auxdata gives it back (``tp_vlan_tci``), as ``tcpdump -e`` does.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from dataclasses import dataclass

from pyroute2 import netns as pyroute2_netns

ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4
PACKET_OUTGOING = 4
BROADCAST = b"\xff" * 6


@dataclass(frozen=True)
class Frame:
    vid: int | None  # the 802.1Q VLAN id it carried; None: untagged
    outgoing: bool  # sent from this link rather than received on it
    data: bytes  # from the destination MAC, without the tag

    @property
    def ethertype(self) -> int:
        return struct.unpack("!H", self.data[12:14])[0]

    def arp_reply(self) -> tuple[str, bytes] | None:
        """(sender IP, sender MAC) when this is an ARP reply."""
        if self.ethertype != ETH_P_ARP or len(self.data) < 42:
            return None
        op, = struct.unpack("!H", self.data[20:22])
        if op != 2:
            return None
        return socket.inet_ntoa(self.data[28:32]), self.data[22:28]


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def arp_request(src_mac: bytes, src_ip: str, dst_ip: str, vid: int | None = None) -> bytes:
    """A broadcast ARP who-has, tagged in-band with ``vid`` when given."""
    head = BROADCAST + src_mac
    if vid is not None:
        head += struct.pack("!HH", ETH_P_8021Q, vid)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, src_mac, socket.inet_aton(src_ip),
                      b"\0" * 6, socket.inet_aton(dst_ip))
    return head + struct.pack("!H", ETH_P_ARP) + arp


class Tap:
    """Every frame through ``dev`` in ``netns``, both ways, with its tag."""

    def __init__(self, netns: str, dev: str) -> None:
        self.sock = pyroute2_netns.create_socket(netns, socket.AF_PACKET, socket.SOCK_RAW,
                                                 socket.htons(ETH_P_ALL))
        self.sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        self.sock.bind((dev, 0))

    def send(self, frame: bytes) -> None:
        self.sock.send(frame)

    def frames(self, seconds: float) -> list[Frame]:
        """What went through in the next ``seconds``."""
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                break
            data, ancillary, _, address = self.sock.recvmsg(65535, socket.CMSG_SPACE(32))
            vid = None
            for level, kind, aux in ancillary:
                if level == SOL_PACKET and kind == PACKET_AUXDATA:
                    status, _, _, _, _, tci, _ = struct.unpack("IIIHHHH", aux[:20])
                    if status & TP_STATUS_VLAN_VALID:
                        vid = tci & 0x0FFF
            out.append(Frame(vid, address[2] == PACKET_OUTGOING, data))
        return out

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Tap:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# -- IPv6 neighbour discovery and other frames an instance should not get out ------------

ETH_P_IPV6 = 0x86DD
ETH_P_IP = 0x0800
ICMPV6 = 58
NA_OVERRIDE = 0x20000000


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv6(src_mac: bytes, dst_mac: bytes, src_ip: str, dst_ip: str, next_header: int,
         payload: bytes, hop_limit: int = 255) -> bytes:
    header = struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, hop_limit,
                         socket.inet_pton(socket.AF_INET6, src_ip),
                         socket.inet_pton(socket.AF_INET6, dst_ip))
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IPV6) + header + payload


def icmpv6(src_mac: bytes, dst_mac: bytes, src_ip: str, dst_ip: str, type_: int, code: int,
           body: bytes) -> bytes:
    """An ICMPv6 message with its checksum (over the pseudo-header)."""
    src, dst = (socket.inet_pton(socket.AF_INET6, a) for a in (src_ip, dst_ip))
    length = 4 + len(body)
    pseudo = src + dst + struct.pack("!I3xB", length, ICMPV6)
    checksum = _checksum(pseudo + struct.pack("!BBH", type_, code, 0) + body)
    return ipv6(src_mac, dst_mac, src_ip, dst_ip, ICMPV6,
                struct.pack("!BBH", type_, code, checksum) + body)


def _lladdr_option(kind: int, mac: bytes) -> bytes:
    return struct.pack("!BB6s", kind, 1, mac)


def neighbour_advert(src_mac: bytes, dst_mac: bytes, src_ip: str, dst_ip: str, target: str,
                     tlla: bytes | None, flags: int = NA_OVERRIDE,
                     extra: bytes = b"") -> bytes:
    """An NA for ``target`` (the override flag set: the receiver takes its MAC at once)."""
    body = struct.pack("!I16s", flags, socket.inet_pton(socket.AF_INET6, target))
    if tlla is not None:
        body += _lladdr_option(2, tlla)
    return icmpv6(src_mac, dst_mac, src_ip, dst_ip, 136, 0, body + extra)


def neighbour_solicit(src_mac: bytes, dst_mac: bytes, src_ip: str, dst_ip: str, target: str,
                      slla: bytes | None) -> bytes:
    body = struct.pack("!I16s", 0, socket.inet_pton(socket.AF_INET6, target))
    if slla is not None:
        body += _lladdr_option(1, slla)
    return icmpv6(src_mac, dst_mac, src_ip, dst_ip, 135, 0, body)


def router_advert(src_mac: bytes, src_ip: str, prefix: str) -> bytes:
    """An RA to all nodes: a default router (lifetime 1800 s) and an autoconf prefix."""
    body = struct.pack("!BBHII", 64, 0, 1800, 0, 0)
    net, length = prefix.split("/")
    body += struct.pack("!BBBBIII16s", 3, 4, int(length), 0xC0, 86400, 14400, 0,
                        socket.inet_pton(socket.AF_INET6, net))
    body += _lladdr_option(1, src_mac)
    return icmpv6(src_mac, b"\x33\x33\x00\x00\x00\x01", src_ip, "ff02::1", 134, 0, body)


def redirect(src_mac: bytes, dst_mac: bytes, src_ip: str, dst_ip: str, target: str,
             destination: str) -> bytes:
    body = struct.pack("!I16s16s", 0, socket.inet_pton(socket.AF_INET6, target),
                       socket.inet_pton(socket.AF_INET6, destination))
    return icmpv6(src_mac, dst_mac, src_ip, dst_ip, 137, 0, body + _lladdr_option(2, src_mac))


def udp4(src_mac: bytes, dst_mac: bytes, src_ip: str, dst_ip: str, sport: int, dport: int,
         payload: bytes) -> bytes:
    """An IPv4 UDP datagram (no UDP checksum: 0 is allowed in IPv4)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + header + udp


def icmpv6_of(frame: Frame) -> tuple[int, bytes] | None:
    """(ICMPv6 type, message body after the checksum) of an IPv6 frame without
    extension headers, else None."""
    data = frame.data
    if frame.ethertype != ETH_P_IPV6 or len(data) < 14 + 40 + 4 or data[20] != ICMPV6:
        return None
    return data[54], data[58:]
