{% include "c/settings.c" %}
{{ v.runtime_open }}

/* Windows Vista or later: WSAPoll, inet_ntop, GetTickCount64, condition variables. */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0600
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>
#include <process.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#ifdef _MSC_VER
#pragma comment(lib, "ws2_32.lib")
#include <BaseTsd.h>
typedef SSIZE_T ssize_t;
#endif
{%- if v.tcp || v.client %}

/* C11 atomics are optional in MSVC; counters shared by threads use the Interlocked calls. */
typedef volatile LONG64 shared_counter;

static unsigned long long shared_counter_next(shared_counter *counter)
{
    return (unsigned long long)InterlockedIncrement64(counter);
}
{%- endif %}
{%- if v.thread_per_connection %}

/* The lock a worker's connection threads take around callbacks. */
typedef SRWLOCK worker_mutex;

static inline void worker_mutex_lock(worker_mutex *mutex)
{
    AcquireSRWLockExclusive(mutex);
}

static inline void worker_mutex_unlock(worker_mutex *mutex)
{
    ReleaseSRWLockExclusive(mutex);
}
{%- endif %}
{%- if v.tcp && v.framing == FramingKind::Delimiter %}

/* The first occurrence of needle in haystack, or NULL: memmem, which Windows' C runtime lacks. */
static const unsigned char *find_bytes(const unsigned char *haystack, size_t len,
                                       const unsigned char *needle, size_t needle_len)
{
    size_t i;
    for (i = 0; needle_len <= len && i <= len - needle_len; i++) {
        if (haystack[i] == needle[0] && memcmp(haystack + i, needle, needle_len) == 0) {
            return haystack + i;
        }
    }
    return NULL;
}
{%- endif %}

{% include "c/contract.c" %}
{{ v.runtime_close }}
