/*
 * checksum.c - the Internet checksum (RFC 1071) of a NET_BUFFER's data, the
 * way a driver computes it without copying: walking the MDL chain from the
 * current MDL, whose pieces may have any length, odd ones included.
 *
 * Two classic bugs, one per macro:
 *   BUG_ODD_MDL_PIECE   each MDL piece is summed as if it began a 16-bit word,
 *                       so an odd-length piece shifts every byte after it;
 *   BUG_READ_PAST_MDL   the sum takes 16-bit words, so an odd-length piece's
 *                       last word reads one byte past what the MDL describes.
 */
#include <ndis.h>

USHORT checksum_nb(_In_ PNET_BUFFER NetBuffer)
{
    PMDL mdl = NET_BUFFER_CURRENT_MDL(NetBuffer);
    ULONG offset = NET_BUFFER_CURRENT_MDL_OFFSET(NetBuffer);
    ULONG remaining = NET_BUFFER_DATA_LENGTH(NetBuffer);
    ULONG64 sum = 0;
    BOOLEAN high = TRUE;              /* the next byte is a word's high byte */

    while (remaining && mdl) {
        PUCHAR bytes;
        ULONG length, i;
        NdisQueryMdl(mdl, &bytes, &length, NormalPagePriority | MdlMappingNoExecute);
        if (!bytes)
            return 0;
        bytes += offset;
        length -= offset;
        offset = 0;
        if (length > remaining)
            length = remaining;
#if defined(BUG_READ_PAST_MDL)
        for (i = 0; i < length; i += 2)
            sum += ((ULONG)bytes[i] << 8) | bytes[i + 1];  /* reads bytes[length] if odd */
#else
#if defined(BUG_ODD_MDL_PIECE)
        high = TRUE;                  /* BUG: a piece does not always begin a word */
#endif
        for (i = 0; i < length; i++) {
            sum += high ? (ULONG)bytes[i] << 8 : bytes[i];
            high = !high;
        }
#endif
        remaining -= length;
        mdl = NDIS_MDL_LINKAGE(mdl);
    }
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (USHORT)~sum;
}
