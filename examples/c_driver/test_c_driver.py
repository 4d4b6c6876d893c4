"""Fuzzing a driver's C code with ndisemu: the header parser and the MDL-walking
checksum of this folder, run over NBLs of every shape a driver meets, against a
Python oracle that reads the same bytes through ndisemu (k.nb_bytes).

    pytest examples/c_driver          # the correct code passes
    BUG=offset pytest examples/c_driver   # ... and each bug is found

Each test builds the driver (cached after the first run), loads it into the
`ndis_kernel` fixture's Kernel, and lets Hypothesis pick the NBLs:
`derived_nbls` gives built NBLs with data straddling MDLs, clones, deep clones,
fragments, retreated and advanced ones, each with the bytes its NBs hold.
"""

import functools
import os
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ndisemu import driver
from ndisemu.strategies import derived_nbls

HERE = Path(__file__).resolve().parent

# The classic bugs, one per build: which source, which macro.
BUGS = {
    "offset": ("parser.c", "BUG_IGNORES_CURRENT_MDL_OFFSET"),
    "odd": ("checksum.c", "BUG_ODD_MDL_PIECE"),
    "past": ("checksum.c", "BUG_READ_PAST_MDL"),
}
BUG = os.environ.get("BUG")
SANITIZE = os.environ.get("SANITIZE") == "1"

PARSER_CDEF = """
typedef struct _PARSED_FRAME {
    USHORT EtherType; UCHAR IpVersion; UCHAR Protocol; USHORT TotalLength;
    ULONG Source; ULONG Destination;
} PARSED_FRAME;
NDIS_STATUS parse_frame(PNET_BUFFER NetBuffer, PARSED_FRAME *Frame);
"""
CHECKSUM_CDEF = "USHORT checksum_nb(PNET_BUFFER NetBuffer);"


@functools.cache
def build(source: str, cdef: str) -> driver.Driver:
    """The driver from `source`, with the bug BUG selects if it lives there."""
    macros = [(BUGS[BUG][1], None)] if BUG in BUGS and BUGS[BUG][0] == source else []
    return driver.build(Path(source).stem, [HERE / source], cdef, define_macros=macros,
                        extra_compile_args=["-Wall", "-Werror"], sanitize=SANITIZE)


FIELDS = ("EtherType", "IpVersion", "Protocol", "TotalLength", "Source", "Destination")
NDIS_STATUS_INVALID_LENGTH = 0xC0010014


def oracle_parse(frame: bytes) -> dict | None:
    """What parse_frame must find in `frame` (None: too short)."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from(">H", frame, 12)[0]
    if ethertype != 0x0800:
        return dict(zip(FIELDS, (ethertype, 0, 0, 0, 0, 0), strict=True))
    if len(frame) < 34:
        return None
    ip = frame[14:34]
    return dict(zip(FIELDS, (ethertype, ip[0] >> 4, ip[9], struct.unpack_from(">H", ip, 2)[0],
                             *struct.unpack_from(">II", ip, 12)), strict=True))


def oracle_checksum(data: bytes) -> int:
    """RFC 1071 over `data`, an odd last byte as a high byte."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# The fixture's Kernel lives for the whole test; each example's NBLs are freed
# when the example ends.  This is the one health check a function-scoped
# fixture needs under @given.
FUZZ = settings(max_examples=int(os.environ.get("EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.data())
def test_parser_reads_the_headers_the_bytes_hold(ndis_kernel, data):
    d = ndis_kernel.load(build("parser.c", PARSER_CDEF))
    nbl, frames = data.draw(derived_nbls(ndis_kernel, min_len=0, max_len=80))
    nb = nbl.FirstNetBuffer
    for expected_bytes in frames:
        frame = d.ffi.new("PARSED_FRAME *")
        status = d.parse_frame(nb, frame) & 0xFFFFFFFF
        expected = oracle_parse(expected_bytes)
        if expected is None:
            assert f"{status:#x}" == f"{NDIS_STATUS_INVALID_LENGTH:#x}", \
                f"a {len(expected_bytes)}-byte frame is too short for the headers"
        else:
            assert f"{status:#x}" == "0x0"
            assert {name: getattr(frame, name) for name in FIELDS} == expected
        assert ndis_kernel.nb_bytes(nb) == expected_bytes     # the NB is given back as it was
        nb = nb.Next


@FUZZ
@given(data=st.data())
def test_checksum_matches_the_bytes(ndis_kernel, data):
    d = ndis_kernel.load(build("checksum.c", CHECKSUM_CDEF))
    nbl, payloads = data.draw(derived_nbls(ndis_kernel))
    nb = nbl.FirstNetBuffer
    for payload in payloads:
        got = d.checksum_nb(nb)
        assert f"{got:#06x}" == f"{oracle_checksum(payload):#06x}"
        nb = nb.Next
