static uint64_t {{ v.name }}_now_ns(void)
{
{%- if v.windows %}
    LARGE_INTEGER count, frequency;
    QueryPerformanceCounter(&count);
    QueryPerformanceFrequency(&frequency);
    return (uint64_t)((double)count.QuadPart * 1e9 / (double)frequency.QuadPart);
{%- else %}
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
{%- endif %}
}

/* Byte `at` of message `message` on connection `id` (a datagram on a UDP socket): splitmix64
 * over (id, message, at / 8), so sender and checker agree without sharing state. */
static unsigned char {{ v.name }}_payload_byte(unsigned long long id, unsigned message, size_t at)
{
    uint64_t z = id * 0x9e3779b97f4a7c15ull ^ ((uint64_t)message << 40) ^ (uint64_t)(at / 8);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (unsigned char)(z >> (8 * (at % 8)));
}
