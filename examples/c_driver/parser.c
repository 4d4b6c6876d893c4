/*
 * parser.c - a receive-path header parser, written the way NDIS filter and
 * protocol drivers write them: the Ethernet header read with
 * NdisGetDataBuffer (into Storage when it straddles MDLs), the data start
 * advanced past it to read the IPv4 header the same way, then retreated back
 * so the caller gets the NET_BUFFER as it gave it.
 *
 * Build with -DBUG_IGNORES_CURRENT_MDL_OFFSET for the classic offset bug:
 * taking the header from the start of the current MDL, as if the data always
 * began there.  It works on every NET_BUFFER whose DataOffset is 0, and
 * reads the wrong bytes on the others.
 */
#include <ndis.h>

#define ETHERNET_HEADER 14
#define IPV4_HEADER 20
#define ETHERTYPE_IPV4 0x0800

typedef struct _PARSED_FRAME {
    USHORT EtherType;
    UCHAR IpVersion;
    UCHAR Protocol;
    USHORT TotalLength;
    ULONG Source;
    ULONG Destination;
} PARSED_FRAME;

static USHORT read_be16(const UCHAR *p)
{
    return (USHORT)((p[0] << 8) | p[1]);
}

static ULONG read_be32(const UCHAR *p)
{
    return ((ULONG)p[0] << 24) | ((ULONG)p[1] << 16) | ((ULONG)p[2] << 8) | p[3];
}

static PUCHAR ethernet_header(PNET_BUFFER NetBuffer, UCHAR *Storage)
{
#ifdef BUG_IGNORES_CURRENT_MDL_OFFSET
    PMDL mdl = NET_BUFFER_CURRENT_MDL(NetBuffer);
    /* BUG: the frame starts CurrentMdlOffset bytes into the current MDL */
    if (mdl && MmGetMdlByteCount(mdl) >= ETHERNET_HEADER)
        return MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority | MdlMappingNoExecute);
#endif
    return NdisGetDataBuffer(NetBuffer, ETHERNET_HEADER, Storage, 1, 0);
}

/* Fills *Frame from the NET_BUFFER's frame: NDIS_STATUS_INVALID_LENGTH when
 * the headers are not all there. */
NDIS_STATUS parse_frame(_In_ PNET_BUFFER NetBuffer, _Out_ PARSED_FRAME *Frame)
{
    UCHAR ethernet_storage[ETHERNET_HEADER], ip_storage[IPV4_HEADER];
    NDIS_STATUS status = NDIS_STATUS_SUCCESS;
    PUCHAR ethernet, ip;

    RtlZeroMemory(Frame, sizeof *Frame);
    ethernet = ethernet_header(NetBuffer, ethernet_storage);
    if (!ethernet)
        return NDIS_STATUS_INVALID_LENGTH;
    Frame->EtherType = read_be16(ethernet + 12);
    if (Frame->EtherType != ETHERTYPE_IPV4)
        return NDIS_STATUS_SUCCESS;

    NdisAdvanceNetBufferDataStart(NetBuffer, ETHERNET_HEADER, FALSE, NULL);
    ip = NdisGetDataBuffer(NetBuffer, IPV4_HEADER, ip_storage, 1, 0);
    if (ip) {
        Frame->IpVersion = ip[0] >> 4;
        Frame->Protocol = ip[9];
        Frame->TotalLength = read_be16(ip + 2);
        Frame->Source = read_be32(ip + 12);
        Frame->Destination = read_be32(ip + 16);
    } else {
        status = NDIS_STATUS_INVALID_LENGTH;
    }
    /* Back to where the caller had the data start: always within the bytes
     * just advanced over, so it needs no new MDL and cannot fail. */
    status = NdisRetreatNetBufferDataStart(NetBuffer, ETHERNET_HEADER, 0, NULL) ==
             NDIS_STATUS_SUCCESS ? status : NDIS_STATUS_FAILURE;
    NT_ASSERT(status != NDIS_STATUS_FAILURE);
    return status;
}
