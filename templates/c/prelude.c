#define _GNU_SOURCE
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


{% include "c/contract.c" %}
