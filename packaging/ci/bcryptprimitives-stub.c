/* Test-only stand-in for bcryptprimitives.dll, which Wine 8 lacks.
 *
 * Rust's std (1.78+) imports ProcessPrng from bcryptprimitives.dll on Windows; without
 * it every Rust .exe fails to load under Wine 8. This stub forwards to RtlGenRandom
 * (advapi32 SystemFunction036, which Wine implements). It is copied into the CI Wine
 * prefix only (packaging/ci/run-packaging.sh) and is never shipped in the MSI: real
 * Windows 10 and later have the genuine DLL.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
