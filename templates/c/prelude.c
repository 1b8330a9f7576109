{% include "c/settings.c" %}
{{ v.runtime_open }}

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
{%- if v.uses_epoll %}
#include <sys/epoll.h>
{%- endif %}
{%- if v.uses_io_uring %}
#include <sys/mman.h>
#include <liburing.h> /* Debian: apt-get install liburing-dev; link with -luring */
{%- endif %}
{%- if v.tcp || v.client %}

/* A counter every worker thread adds to (C11 atomics; Winsock C uses the Interlocked calls). */
typedef atomic_ullong shared_counter;

/* Adds one; returns the new value, so the first call returns 1. */
static unsigned long long shared_counter_next(shared_counter *counter)
{
    return atomic_fetch_add(counter, 1) + 1;
}
{%- endif %}
{%- if v.thread_per_connection %}

/* The lock a worker's connection threads take around callbacks. */
typedef pthread_mutex_t worker_mutex;

static inline void worker_mutex_lock(worker_mutex *mutex)
{
    pthread_mutex_lock(mutex);
}

static inline void worker_mutex_unlock(worker_mutex *mutex)
{
    pthread_mutex_unlock(mutex);
}
{%- endif %}
{%- if v.tcp && v.framing == FramingKind::Delimiter %}

/* The first occurrence of needle in haystack, or NULL. */
static const unsigned char *find_bytes(const unsigned char *haystack, size_t len,
                                       const unsigned char *needle, size_t needle_len)
{
    return memmem(haystack, len, needle, needle_len);
}
{%- endif %}


{% include "c/contract.c" %}
{{ v.runtime_close }}
