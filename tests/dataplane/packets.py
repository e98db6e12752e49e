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
