"""Driver C code on emulated NBLs: ndisemu's headers, the build helper, the
trampolines that unwind a bug check, several modules and Kernels at once,
and the sanitized build that reports an overrun at the driver's line."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import live

import ndisemu
from ndisemu import constants, driver, ffi, layout, sanitize

DRIVERS = Path(__file__).resolve().parent / "drivers"
STRICT = ["-Wall", "-Wextra", "-Werror"]


pytestmark = pytest.mark.usefixtures("driver_cache")


@pytest.fixture(scope="session")
def every_call():
    return driver.build("every_call", [DRIVERS / "every_call.c"],
                        "ULONG every_call(PNET_BUFFER_LIST orig);", extra_compile_args=STRICT)


MISUSE_CDEF = """
ULONG last_reached(void);
void double_free(PNET_BUFFER_LIST nbl);
void wild_pointer_at_dispatch(void);
ULONG assert_value(ULONG value);
void bug_check(ULONG code);
void reserved_clone_flag(PNET_BUFFER_LIST nbl);
void fragment_flags(PNET_BUFFER_LIST nbl);
void io_mdl_with_irp(void);
void lower_above_current(void);
void call_above_dispatch(PNET_BUFFER_LIST nbl);
NDIS_STATUS retreat_all_or_nothing(PNET_BUFFER_LIST nbl);
ULONG handler_frees_seen(void);
ULONG gather(PNET_BUFFER nb, ULONG needed);
void free_in_flight(PNET_BUFFER_LIST nbl);
"""


@pytest.fixture(scope="session")
def misuse():
    return driver.build("misuse", [DRIVERS / "misuse.c"], MISUSE_CDEF,
                        extra_compile_args=STRICT)


def test_headers_are_where_get_include_says():
    include = Path(ndisemu.get_include())
    assert (include / "ndis.h").is_file() and (include / "fwpsk.h").is_file()
    assert driver.get_include() == ndisemu.get_include()
    out = subprocess.run([sys.executable, "-m", "ndisemu", "include"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == str(include)


def test_every_call_and_macro_runs_and_frees_everything(k, every_call):
    d = k.load(every_call)
    pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
    nbl = k.build_nbl(pool, [b"abcdefghij"], mdl_sizes=[3])
    before = live(k)
    assert d.every_call(nbl) == 0          # the failing step's number otherwise
    assert live(k) == before and k.irql == 0
    assert k.nbl_bytes(nbl) == [b"abcdefghij"]
    k.free_built(nbl)
    k.NdisFreeNetBufferListPool(pool)


# Each misuse: the function, its arguments, the bug check and words of the message.
MISUSES = [
    ("double_free", "nbl", 0x7C, 0x82, ["misuse.double_free -> NdisFreeCloneNetBufferList",
                                         "freed twice"]),
    ("wild_pointer_at_dispatch", None, 0x7C, 0x81, ["NdisFreeNetBufferList",
                                                     "not a live object"]),
    ("assert_value", 7, 0x1E, 0xC0000420, ["ASSERT(value == 42)", "misuse.c:36",
                                            "KMODE_EXCEPTION_NOT_HANDLED"]),
    ("bug_check", 0xDEAD, 0xDEAD, 1, ["KeBugCheckEx"]),
    ("reserved_clone_flag", "nbl", 0x7C, 0x8F, ["NDIS_CLONE_FLAGS_RESERVED"]),
    ("fragment_flags", "nbl", 0x7C, 0x8F, ["AllocateFragmentFlags must be 0"]),
    ("io_mdl_with_irp", None, 0x7C, 0x8F, ["IRPs are not emulated"]),
    ("lower_above_current", None, 0xC4, 0x31, ["KeLowerIrql"]),
    ("call_above_dispatch", "nbl", 0xC4, 0x91001, ["above its maximum IRQL"]),
]


@pytest.mark.parametrize("function,arg,code,p1,words", MISUSES, ids=[m[0] for m in MISUSES])
def test_bug_checks_from_c_unwind_and_leave_the_kernel_usable(k, pool, misuse, function, arg,
                                                              code, p1, words):
    d = k.load(misuse)
    nbl = k.build_nbl(pool, [b"payload"])
    args = [] if arg is None else [nbl if arg == "nbl" else arg]
    before = live(k)
    with pytest.raises(ndisemu.BugCheck) as info:
        getattr(d, function)(*args)
    err = info.value
    assert (err.code, err.parameters[0]) == (code, p1), str(err)
    for word in words:
        assert word in str(err), str(err)
    assert k.irql == 0                     # the IRQL the call began at
    if function == "double_free":
        assert d.last_reached() == 2       # stopped at the second free, not after it
    elif function != "wild_pointer_at_dispatch":
        assert live(k) == before
    assert d.assert_value(42) == 42        # the Kernel and the driver carry on
    k.free_built(nbl)


class _Protocol:
    def ProtocolSendNetBufferListsComplete(self, nbls, flags):
        self.completed = nbls


def test_driver_code_freeing_an_nbl_in_flight_is_stopped_at_the_free(k, misuse):
    """The binding lives in Python, the free in C: the core refuses it."""
    d = k.load(misuse)
    protocol = _Protocol()
    b = k.bind(protocol=protocol, miniport=ndisemu.LoopbackMiniport(defer=True))
    pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
    nbl = k.NdisAllocateNetBufferAndNetBufferList(pool, 0, 0, ffi.NULL, 0, 0)
    nbl.SourceHandle = protocol.handle
    k.NdisSendNetBufferLists(protocol.handle, nbl, 0, 0)
    with pytest.raises(ndisemu.BugCheck) as info:
        d.free_in_flight(nbl)
    err = info.value
    assert err.parameters == (0x92, k.addr(nbl), k.addr(b.miniport.handle), 0), str(err)
    for word in ("misuse.free_in_flight -> NdisFreeNetBufferList", "NBL freed while it is in "
                 "flight", "miniport owns it", "its home is protocol"):
        assert word in str(err), str(err)
    assert d.last_reached() != 4 and b.owner(nbl) == "miniport"
    b.complete_pending()                   # back home: now the protocol may free it
    assert protocol.completed == nbl
    d.free_in_flight(nbl)
    assert d.last_reached() == 4
    b.unbind()
    k.NdisFreeNetBufferListPool(pool)


def test_retreat_of_an_nbl_is_all_or_nothing_with_c_handlers(k, pool, misuse):
    d = k.load(misuse)
    nbl = k.build_nbl(pool, [b"one", b"two"])
    before = live(k)
    # NDIS_STATUS is a LONG in C: compare its 32 bits with the unsigned constant
    assert d.retreat_all_or_nothing(nbl) & 0xFFFFFFFF == ndisemu.NDIS_STATUS_RESOURCES
    assert d.handler_frees_seen() == 1     # the first NB's MDL went back
    assert live(k) == before and k.nbl_bytes(nbl) == [b"one", b"two"]
    k.free_built(nbl)


@pytest.mark.parametrize("mdl_sizes,needed,copied", [([3], 6, True), ([32], 6, False)])
def test_get_data_buffer_into_storage_on_the_drivers_stack(k, pool, misuse, mdl_sizes, needed,
                                                           copied):
    d = k.load(misuse)
    nbl = k.build_nbl(pool, [bytes(range(1, 21))], mdl_sizes=mdl_sizes)
    result = d.gather(nbl.FirstNetBuffer, needed)
    assert result & 0xFFFF == sum(range(1, needed + 1))
    assert bool(result & 0x10000) == copied
    k.free_built(nbl)


def test_views_and_none_pass_for_pointers(k, pool, misuse):
    d = k.load(misuse)
    nbl = k.build_nbl(pool, [b"abc"])
    assert d.gather(k.view(nbl).FirstNetBuffer, 2) == ord("a") + ord("b")
    with pytest.raises(ndisemu.BugCheck):
        d.double_free(None)
    k.free_built(nbl)


def test_two_modules_and_two_kernels_at_once(every_call, misuse):
    kernels = [ndisemu.Kernel(arena_size=1 << 20) for _ in range(2)]
    for k in kernels:
        calls, bad = k.load(every_call), k.load(misuse)
        pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
        nbl = k.build_nbl(pool, [b"abcdefghij"], mdl_sizes=[3])
        assert calls.every_call(nbl) == 0
        with pytest.raises(ndisemu.BugCheck, match="freed twice"):
            bad.double_free(nbl)
        # the other Kernel's objects are not this one's
        other = kernels[1 - kernels.index(k)]
        with pytest.raises(ndisemu.BugCheck, match="not a live object"):
            other.load(misuse).double_free(nbl)
        k.free_built(nbl)
    assert kernels[0].stats()["nbl"] == kernels[1].stats()["nbl"] == 0


def test_build_is_cached_by_content(every_call):
    again = driver.build("every_call", [DRIVERS / "every_call.c"],
                         "ULONG every_call(PNET_BUFFER_LIST orig);", extra_compile_args=STRICT)
    assert again.path == every_call.path
    other = driver.build("every_call", [DRIVERS / "every_call.c"],
                         "ULONG every_call(PNET_BUFFER_LIST orig);",
                         extra_compile_args=[*STRICT, "-DNDIS630"])
    assert other.path != every_call.path and other.path.exists()


def test_build_errors(tmp_path):
    broken = tmp_path / "broken.c"
    broken.write_text("#include <ndis.h>\nULONG f(void) { return NoSuchCall(); }\n")
    with pytest.raises(driver.BuildError, match="NoSuchCall"):
        driver.build("broken", [broken], "ULONG f(void);", extra_compile_args=["-Werror"])
    with pytest.raises(ValueError, match="no such source"):
        driver.build("missing", [tmp_path / "none.c"], "ULONG f(void);")
    with pytest.raises(TypeError, match="list of file paths"):
        driver.build("single", str(broken), "ULONG f(void);")
    with pytest.raises(ValueError, match="C identifier"):
        driver.build("not a name", [broken], "ULONG f(void);")
    with pytest.raises(ValueError, match="no function"):
        driver.build("empty", [broken], "typedef int nothing_t;")
    with pytest.raises(TypeError):
        ndisemu.Kernel(arena_size=1 << 20).load("not a driver")


def test_ndis_version_macros_select_the_drivers_view(tmp_path, k):
    source = tmp_path / "view.c"
    source.write_text("#include <ndis.h>\nULONG max_info(void) { return MaxNetBufferListInfo; }\n"
                      "ULONG nbl_size(void) { return sizeof(NET_BUFFER_LIST); }\n")
    cdef = "ULONG max_info(void); ULONG nbl_size(void);"
    for macro, version in [("NDIS60", "6.0"), ("NDIS630_MINIPORT", "6.30"), (None, "6.87")]:
        drv = driver.build("view", [source], cdef,
                           define_macros=[(macro, "1")] if macro else [])
        d = k.load(drv)
        assert d.max_info() == constants.for_version(version)["MaxNetBufferListInfo"]
        assert d.nbl_size() == layout.sizeof("NET_BUFFER_LIST", "x64", version)


NO_TRAMPOLINE = """
import ndisemu
from ndisemu import driver
drv = driver.build("misuse", [{source!r}], '''{cdef}''')
k = ndisemu.Kernel(arena_size=1 << 20)
d = k.load(drv)
d._lib.wild_pointer_at_dispatch()     # straight into C: no trampoline below it
print("not reached")
"""


def test_a_call_with_no_trampoline_below_it_aborts_naming_the_call():
    script = NO_TRAMPOLINE.format(source=str(DRIVERS / "misuse.c"), cdef=MISUSE_CDEF)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=False, timeout=300)
    assert out.returncode != 0 and "not reached" not in out.stdout
    assert "KeRaiseIrql called with no emulated machine" in out.stderr


# ---- the sanitized build ---------------------------------------------------------

try:
    sanitize.runtime_library()
    NO_ASAN = ""
except sanitize.SanitizerMissing as error:
    NO_ASAN = str(error)

SANITIZED = textwrap.dedent("""
    import sys
    import ndisemu
    from ndisemu import driver
    drv = driver.build("overrun", [{source!r}], '''
        UCHAR read_past(PMDL Mdl); void write_freed(void); UCHAR read_last(PMDL Mdl);''',
        sanitize=True)
    k = ndisemu.Kernel(arena_size=1 << 20)
    d = k.load(drv)
    pool = k.NdisAllocateNetBufferListPool(None, {{"fAllocateNetBuffer": True}})
    nbl = k.build_nbl(pool, [b"hello"], mdl_sizes=[3])
    mdl = nbl.FirstNetBuffer.MdlChain
    assert d.read_last(mdl) == ord("l")     # inside the MDL: fine
    print("ready", flush=True)
    if sys.argv[1] == "read_past":
        d.read_past(mdl)
    else:
        d.write_freed()
    print("not caught")
""")

OVERRUN_C = """\
#include <ndis.h>

UCHAR read_last(PMDL Mdl)
{
    PUCHAR bytes = MmGetSystemAddressForMdlSafe(Mdl, NormalPagePriority);
    return bytes[MmGetMdlByteCount(Mdl) - 1];
}

UCHAR read_past(PMDL Mdl)
{
    PUCHAR bytes = MmGetSystemAddressForMdlSafe(Mdl, NormalPagePriority | MdlMappingNoExecute);
    return bytes[MmGetMdlByteCount(Mdl)];          /* line 12: one past the MDL */
}

VOID write_freed(void)
{
    PUCHAR p = NdisAllocateMemoryWithTagPriority(NULL, 32, 'tseT', NormalPagePriority);
    NdisFreeMemoryWithTagPriority(NULL, p, 'tseT');
    p[3] = 1;                                      /* line 19: into freed memory */
}
"""


@pytest.mark.skipif(bool(NO_ASAN), reason=f"no sanitizer runtime: {NO_ASAN}")
@pytest.mark.parametrize("case,line,where", [
    ("read_past", 12, "the first byte past the end of the 3-byte data buffer at 0xffffe"),
    ("write_freed", 19, "byte 3 of the freed memory block at 0xffffe"),
])
def test_sanitized_build_reports_the_drivers_line(tmp_path, case, line, where):
    """ASan names the driver's line; ndisemu adds what the address is in the
    arena and the last NDIS call."""
    source = tmp_path / "overrun.c"
    source.write_text(OVERRUN_C)
    script = tmp_path / "run.py"
    script.write_text(SANITIZED.format(source=str(source)))
    command = [sys.executable, "-m", "ndisemu", "sanitized", "--", sys.executable, str(script),
               case]
    out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert "ready" in out.stdout and "not caught" not in out.stdout, out.stderr[-3000:]
    assert out.returncode != 0
    assert "ERROR: AddressSanitizer" in out.stderr
    assert f"overrun.c:{line}" in out.stderr, out.stderr[-3000:]
    assert "ndisemu: the address is 0xffffe" in out.stderr
    assert where in out.stderr, out.stderr[-3000:]
    assert "ndisemu: the last NDIS call on that machine: " in out.stderr


@pytest.mark.skipif(bool(NO_ASAN), reason=f"no sanitizer runtime: {NO_ASAN}")
def test_sanitized_module_without_the_runtime_says_how_to_run(tmp_path, k):
    if sanitize.is_loaded():
        pytest.skip("this process has the sanitizer runtime (make test-sanitize)")
    source = tmp_path / "overrun.c"
    source.write_text(OVERRUN_C)
    drv = driver.build("overrun", [source], "UCHAR read_last(PMDL Mdl);", sanitize=True)
    with pytest.raises(RuntimeError, match="ndisemu sanitized --"):
        k.load(drv)


def test_calls_from_c_are_traced_like_calls_from_python(k, pool, misuse):
    k.trace = True
    d = k.load(misuse)
    nbl = k.build_nbl(pool, [b"payload"])
    with pytest.raises(ndisemu.BugCheck) as info:
        d.double_free(nbl)
    message = str(info.value)
    # the clone the C code made and freed, named in the bug check's history
    assert "NdisAllocateCloneNetBufferList: allocated" in message, message
    assert "NdisFreeCloneNetBufferList: freed" in message, message
    assert "NdisAllocateCloneNetBufferList" in k.show(nbl, log=True)
    k.free_built(nbl)


@pytest.mark.skipif(bool(NO_ASAN), reason=f"no sanitizer runtime: {NO_ASAN}")
def test_nested_sanitized_runs_each_collect_their_own_reports():
    """`ndisemu sanitized` inside another (make test-sanitize running a test
    that runs one): the inner command's reports go to the inner folder, the
    one the inner run prints."""
    show = ("import os; print(os.environ['ASAN_OPTIONS']); "
            "print(os.environ['NDISEMU_SANITIZER_NOTES'])")
    inner = [sys.executable, "-m", "ndisemu", "sanitized", "--", sys.executable, "-c", show]
    out = subprocess.run([sys.executable, "-m", "ndisemu", "sanitized", "--", *inner],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    options, notes = out.splitlines()
    paths = [o for o in options.split(":") if o.startswith("log_path=")]
    assert paths == [f"log_path={Path(notes).parent}/asan"]


# ---- patterns from public drivers' packet paths (tests/drivers/patterns.c) ------

PATTERNS_CDEF = """
ULONG copy_frame(PNET_BUFFER NetBuffer, PUCHAR Out, ULONG Capacity);
USHORT sum_frame(PNET_BUFFER NetBuffer);
ULONG frame_type(PNET_BUFFER NetBuffer);
ULONG count_nbs(PNET_BUFFER_LIST NetBufferLists, PULONG Bytes);
ULONG queue_copies(PNET_BUFFER_LIST NetBufferLists, ULONG ReceiveFlags);
BOOL peek_at(PNET_BUFFER NetBuffer, LONG Index, PUCHAR Out, ULONG Size);
ULONG parse_udp(PNET_BUFFER NetBuffer);
NTSTATUS rewrite_udp_port(PNET_BUFFER_LIST NetBufferList, USHORT Port);
ULONG clone_from_header(PNET_BUFFER_LIST NetBufferList, ULONG HeaderBytes);
PNET_BUFFER_LIST wrap_buffer(NDIS_HANDLE Pool, ULONG Length, UCHAR Fill);
void free_wrapped(PNET_BUFFER_LIST NetBufferList);
ULONG helpers(void);
void remove_twice(void);
"""


@pytest.fixture(scope="session")
def patterns():
    return driver.build("patterns", [DRIVERS / "patterns.c"], PATTERNS_CDEF,
                        extra_compile_args=STRICT)


def _ones_complement(data: bytes) -> int:
    total = sum((b << 8) if i % 2 == 0 else b for i, b in enumerate(data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@pytest.mark.parametrize("mdl_sizes", [None, [1], [3], [5, 2], [64]])
@pytest.mark.parametrize("data_offset", [0, 3])
def test_patterns_walk_the_mdl_chain_from_the_current_mdl(k, pool, patterns, mdl_sizes,
                                                          data_offset):
    d = k.load(patterns)
    frame = bytes(range(1, 42))
    nbl = k.build_nbl(pool, [frame], mdl_sizes=mdl_sizes, data_offset=data_offset)
    out = d.ffi.new("UCHAR[64]")
    nb = nbl.FirstNetBuffer
    assert d.copy_frame(nb, out, 64) == len(frame)
    assert bytes(out[0:len(frame)]) == frame
    assert d.copy_frame(nb, out, 7) == 7
    assert d.sum_frame(nb) == _ones_complement(frame)
    k.free_built(nbl)


@pytest.mark.parametrize("destination,kind", [(b"\xff\xff\xff\xff\xff\xff", 0x08),
                                              (b"\x01\x00\x5e\x00\x00\x01", 0x02),
                                              (b"\x02\x00\x00\x00\x00\x01", 0x01)])
def test_patterns_classify_frames_by_destination(k, pool, patterns, destination, kind):
    d = k.load(patterns)
    nbl = k.build_nbl(pool, [destination + bytes(8)], mdl_sizes=[5])
    assert d.frame_type(nbl.FirstNetBuffer) == kind      # NDIS_PACKET_TYPE_*
    k.free_built(nbl)


def _chain(nbls):
    for first, second in zip(nbls, nbls[1:], strict=False):
        first.Next = second
    return nbls[0]


def _unchain_and_free(k, nbls, null):
    for nbl in nbls:
        nbl.Next = null
        k.free_built(nbl)


@pytest.mark.parametrize("receive_flags", [0, 1, 2])
def test_patterns_count_copy_and_queue_a_chain_of_nbls(k, pool, patterns, receive_flags):
    d = k.load(patterns)
    nbls = [k.build_nbl(pool, [b"first", b"second!"], mdl_sizes=[2]),
            k.build_nbl(pool, [bytes(range(60))], mdl_sizes=[7, 1], data_offset=5),
            k.build_nbl(pool, [b"x"])]
    head = _chain(nbls)
    total = d.ffi.new("ULONG *")
    assert d.count_nbs(head, total) == 4 and total[0] == 5 + 7 + 60 + 1
    before = live(k)
    assert d.queue_copies(head, receive_flags) == 3     # every copy matched its source
    assert live(k) == before and k.irql == 0
    assert [k.nbl_bytes(n) for n in nbls] == [[b"first", b"second!"], [bytes(range(60))],
                                              [b"x"]]
    _unchain_and_free(k, nbls, d.ffi.NULL)


def test_patterns_peek_through_advance_and_retreat(k, pool, patterns):
    d = k.load(patterns)
    frame = bytes(range(100, 150))
    nbl = k.build_nbl(pool, [frame], mdl_sizes=[3], data_offset=2)
    nb = nbl.FirstNetBuffer
    out = d.ffi.new("UCHAR[8]")
    for index, size in [(0, 4), (10, 8), (-4, 4), (46, 4)]:
        assert d.peek_at(nb, index, out, size)
        start = index % len(frame)
        assert bytes(out[0:size]) == frame[start:start + size]
    assert not d.peek_at(nb, 47, out, 4) and not d.peek_at(nb, -51, out, 1)
    assert nb.DataOffset == 2 and k.nbl_bytes(nbl) == [frame]
    k.free_built(nbl)


def _ipv4_udp(source_port, destination_port, protocol=17, payload=b"hello"):
    udp = (source_port.to_bytes(2, "big") + destination_port.to_bytes(2, "big") +
           (8 + len(payload)).to_bytes(2, "big") + b"\x12\x34" + payload)
    ip = bytes([0x45, 0, 0, 20 + len(udp), 0, 0, 0, 0, 64, protocol, 0, 0]) + bytes(8)
    return ip + udp


@pytest.mark.parametrize("mdl_sizes", [None, [7], [1], [20, 3]])
def test_patterns_parse_ipv4_udp_and_put_the_data_start_back(k, pool, patterns, mdl_sizes):
    d = k.load(patterns)
    packets = [_ipv4_udp(1234, 53), _ipv4_udp(1, 2, protocol=6), b"\x45short"]
    nbl = k.build_nbl(pool, packets, mdl_sizes=mdl_sizes, data_offset=14)
    nbs = list(_nbs_of(nbl, d.ffi.NULL))
    assert [d.parse_udp(nb) for nb in nbs] == [(1234 << 16) | 53, 0, 0]
    assert [nb.DataOffset for nb in nbs] == [14, 14, 14]
    assert k.nbl_bytes(nbl) == packets
    k.free_built(nbl)


def _nbs_of(nbl, null):
    nb = nbl.FirstNetBuffer
    while nb != null:
        yield nb
        nb = nb.Next


def test_patterns_rewrite_a_port_through_a_clone_sharing_the_mdls(k, pool, patterns):
    d = k.load(patterns)
    datagrams = [_ipv4_udp(1000, 2000)[20:], _ipv4_udp(3000, 4000, payload=b"")[20:]]
    nbl = k.build_nbl(pool, datagrams, mdl_sizes=[8])
    before = live(k)
    assert d.rewrite_udp_port(nbl, 8080) == 0
    assert live(k) == before and nbl.ChildRefCount == 0
    rewritten = k.nbl_bytes(nbl)
    for old, new in zip(datagrams, rewritten, strict=True):
        assert new[:2] == old[:2] and new[2:4] == (8080).to_bytes(2, "big")
        assert new[6:8] == b"\0\0" and new[8:] == old[8:]
    k.free_built(nbl)

    split = k.build_nbl(pool, datagrams, mdl_sizes=[1])       # header not contiguous
    before = live(k)
    assert d.rewrite_udp_port(split, 9) & 0xFFFFFFFF == 0xC0000206   # STATUS_INVALID_BUFFER_SIZE
    assert live(k) == before and k.nbl_bytes(split) == datagrams
    k.free_built(split)


def test_patterns_clone_from_a_retreated_header(k, pool, patterns):
    d = k.load(patterns)
    nbl = k.build_nbl(pool, [b"transport payload"], mdl_sizes=[6], data_offset=20)
    before = live(k)
    assert d.clone_from_header(nbl, 20) == 0         # the clone starts at the header
    assert nbl.FirstNetBuffer.DataOffset == 20 and live(k) == before
    k.free_built(nbl)


def test_patterns_nbl_over_pool_memory_freed_mdl_by_mdl(k, pool, patterns):
    d = k.load(patterns)
    before = live(k)
    nbl = d.wrap_buffer(pool, 33, 0xAB)
    assert nbl != d.ffi.NULL and k.nbl_bytes(nbl) == [b"\xab" * 33]
    assert live(k) != before
    d.free_wrapped(nbl)
    assert live(k) == before


def test_patterns_list_lock_flag_and_address_helpers(k, patterns):
    d = k.load(patterns)
    assert d.helpers() == 0                  # the failing step's number otherwise
    assert k.irql == 0


def test_a_list_entry_removed_twice_is_a_fast_fail(k, patterns):
    d = k.load(patterns)
    with pytest.raises(ndisemu.BugCheck) as info:
        d.remove_twice()
    assert (info.value.code, info.value.parameters[0]) == (0x139, 3), str(info.value)
    assert d.helpers() == 0


# ---- C++ sources -------------------------------------------------------------

CXX_CDEF = """
UINT32 copy_first_bytes(NET_BUFFER_LIST *netBufferList, BYTE *buffer, UINT32 size);
NTSTATUS clone_and_free(NET_BUFFER_LIST *netBufferList, LONG *childRefCount);
void free_clone_twice(NET_BUFFER_LIST *netBufferList);
ULONG total_length(PNET_BUFFER_LIST netBufferList);
"""


@pytest.fixture(scope="session")
def cxx_driver():
    return driver.build("cxx", [DRIVERS / "cxx_driver.cpp"], CXX_CDEF, extra_compile_args=STRICT)


@pytest.mark.parametrize("mdl_sizes", [None, [3, 7], [1]])
def test_cxx_sources_run_with_cxx_and_c_linkage(k, pool, cxx_driver, mdl_sizes):
    """C++ linkage (the WFP samples' helpers) through a generated shim, and
    an extern "C" function, called alike."""
    d = k.load(cxx_driver)
    payloads = [bytes(range(40)), b"xyz"]
    nbl = k.build_nbl(pool, payloads, mdl_sizes=mdl_sizes, data_offset=5)
    buffer = d.ffi.new("BYTE[64]")
    assert d.copy_first_bytes(nbl, buffer, 64) == 40
    assert bytes(buffer[0:40]) == payloads[0]
    assert d.copy_first_bytes(k.view(nbl), buffer, 6) == 6
    children = d.ffi.new("LONG *")
    assert d.clone_and_free(nbl, children) == 0
    assert children[0] == 1 and nbl.ChildRefCount == 0
    assert d.total_length(nbl) == 43
    k.free_built(nbl)


def test_a_bug_check_in_cxx_code_unwinds_and_leaves_the_kernel_usable(k, pool, cxx_driver):
    d = k.load(cxx_driver)
    nbl = k.build_nbl(pool, [b"abcdef"])
    with pytest.raises(ndisemu.BugCheck, match=r"cxx\.free_clone_twice -> "
                       r"FwpsFreeCloneNetBufferList0: NET_BUFFER_LIST freed twice"):
        d.free_clone_twice(nbl)
    assert nbl.ChildRefCount == 0
    children = d.ffi.new("LONG *")
    assert d.clone_and_free(nbl, children) == 0 and children[0] == 1
    k.free_built(nbl)


def test_c_and_cxx_sources_in_one_driver(k, pool, tmp_path):
    c_source = tmp_path / "half.c"
    c_source.write_text("#include <ndis.h>\n"
                        "ULONG first_length(PNET_BUFFER_LIST Nbl)\n"
                        "{ return NET_BUFFER_DATA_LENGTH(NET_BUFFER_LIST_FIRST_NB(Nbl)); }\n")
    drv = driver.build("mixed", [c_source, DRIVERS / "cxx_driver.cpp"],
                       CXX_CDEF + "ULONG first_length(PNET_BUFFER_LIST Nbl);",
                       extra_compile_args=STRICT)
    d = k.load(drv)
    nbl = k.build_nbl(pool, [b"hello", b"world!"])
    assert (d.first_length(nbl), d.total_length(nbl)) == (5, 11)
    buffer = d.ffi.new("BYTE[8]")
    assert d.copy_first_bytes(nbl, buffer, 8) == 5 and bytes(buffer[0:5]) == b"hello"
    k.free_built(nbl)
