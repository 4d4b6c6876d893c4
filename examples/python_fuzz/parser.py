"""A small header parser over a NET_BUFFER, with an offset bug of the kind
ndisemu exists to find.  README.md walks through finding and fixing it.

parse_frame(k, nb) decodes the Ethernet and IPv4 headers at the start of
the NB's data; parse_bytes(frame) decodes the same fields from plain bytes
and is the reference the test compares against.
"""

from ndisemu import ffi

ETHERNET = 14
IPV4 = 20
HEADERS = ETHERNET + IPV4


def parse_bytes(frame):
    """The header fields of a frame held in `frame` (bytes); None when it
    is too short to hold both headers."""
    if len(frame) < HEADERS:
        return None
    return {
        "destination_mac": frame[0:6].hex(":"),
        "ethertype": int.from_bytes(frame[12:14], "big"),
        "ip_version": frame[14] >> 4,
        "protocol": frame[23],
        "source_ip": ".".join(str(b) for b in frame[26:30]),
        "destination_ip": ".".join(str(b) for b in frame[30:34]),
    }


def header_bytes(k, nb):
    """The first HEADERS bytes of the NB's data."""
    nb = k.view(nb)                    # checked: a stale pointer is a BugCheck, not a crash
    mdl, offset = nb.CurrentMdl, nb.CurrentMdlOffset
    va = ffi.cast("uint8_t *", mdl.MappedSystemVa)
    return k.read(va + offset, HEADERS)    # assumes both headers lie in CurrentMdl


def parse_frame(k, nb):
    """The header fields of the frame in NET_BUFFER `nb`."""
    if k.view(nb).DataLength < HEADERS:
        return None
    return parse_bytes(header_bytes(k, nb))
