/*
 * checksum.c - the Internet checksum (RFC 1071) of a NET_BUFFER's data, the
 * way a driver computes it without copying: walking the MDL chain from the
 * current MDL, whose pieces may have any length, odd ones included.
 *
 * Each piece is summed as 16-bit big-endian words from its own first byte,
 * then folded into the total.  A piece that begins at an odd position of the
 * data has its bytes in the other halves of the words, and RFC 1071 section
 * 2(B) lets the sum be byte-swapped instead of re-paired: so it is.
 *
 * Two classic bugs, one per macro:
 *   BUG_ODD_MDL_PIECE   the swap is forgotten: right whenever every piece but
 *                       the last has an even length, wrong otherwise.  The
 *                       test's oracle finds it.
 *   BUG_READ_PAST_MDL   an odd piece's last word is read whole and its low
 *                       byte masked off: the result is right, but the read
 *                       takes one byte past what the MDL describes.  No
 *                       oracle sees that; AddressSanitizer does.
 */
#include <ndis.h>

/* The words of one piece, summed; an odd last byte as a high byte. */
static ULONG sum_piece(const UCHAR *bytes, ULONG length)
{
    ULONG sum = 0, i;
#if defined(BUG_READ_PAST_MDL)
    for (i = 0; i < length; i += 2) {
        /* BUG: when length is odd, bytes[length] is read (then dropped) */
        ULONG word = ((ULONG)bytes[i] << 8) | bytes[i + 1];
        sum += i + 1 < length ? word : (word & 0xFF00);
    }
#else
    for (i = 0; i + 1 < length; i += 2)
        sum += ((ULONG)bytes[i] << 8) | bytes[i + 1];
    if (length & 1)
        sum += (ULONG)bytes[length - 1] << 8;
#endif
    return sum;
}

static ULONG fold(ULONG64 sum)
{
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (ULONG)sum;
}

USHORT checksum_nb(_In_ PNET_BUFFER NetBuffer)
{
    PMDL mdl = NET_BUFFER_CURRENT_MDL(NetBuffer);
    ULONG offset = NET_BUFFER_CURRENT_MDL_OFFSET(NetBuffer);
    ULONG remaining = NET_BUFFER_DATA_LENGTH(NetBuffer);
    ULONG64 sum = 0;
    ULONG position = 0;                 /* bytes summed so far */

    while (remaining && mdl) {
        PUCHAR bytes;
        ULONG length, piece;
        NdisQueryMdl(mdl, &bytes, &length, NormalPagePriority | MdlMappingNoExecute);
        if (!bytes)
            return 0;
        bytes += offset;
        length -= offset;
        offset = 0;
        if (length > remaining)
            length = remaining;
        piece = fold(sum_piece(bytes, length));
#if !defined(BUG_ODD_MDL_PIECE)
        if (position & 1)               /* the piece's words straddle ours */
            piece = ((piece & 0xFF) << 8) | (piece >> 8);
#endif
        sum += piece;
        position += length;
        remaining -= length;
        mdl = NDIS_MDL_LINKAGE(mdl);
    }
    return (USHORT)~fold(sum);
}
