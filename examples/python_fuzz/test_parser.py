from hypothesis import HealthCheck, given, settings
from parser import parse_bytes, parse_frame

from ndisemu.strategies import nbl_shapes


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=nbl_shapes(max_len=1514))
def test_parser_reads_what_the_frame_holds(ndis_kernel, shape):
    k = ndis_kernel
    nbl = k.build_nbl(k.default_nbl_pool, **shape)
    try:
        nb = k.view(nbl).FirstNetBuffer
        for payload in shape["payloads"]:
            assert parse_frame(k, nb) == parse_bytes(payload)
            nb = nb.Next
    finally:
        k.free_built(nbl)
