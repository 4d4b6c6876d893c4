/* pshpack8.h - pack the structures that follow on 8-byte boundaries, until
 * <poppack.h>, as the WDK's header does. */
#pragma pack(push, 8)
