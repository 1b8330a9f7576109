
/* ---------------------------------------------------------------------------------------------
 * main: read the command line, run the pool until every connection is done.
 */

int main(int argc, char **argv)
{
    struct timespec seed;
    int status;

    if (open_standard_descriptors() != 0) {
        return 1;
    }
    if (parse_args(argc, argv) != 0) {
        return 2;
    }
    if (install_signal_handlers() != 0) {
        return 1;
    }
    raise_descriptor_limit();
    parse_literal_target();
    clock_gettime(CLOCK_REALTIME, &seed);
    backoff_seed = ((uint64_t)seed.tv_nsec << 20) ^ (uint64_t)seed.tv_sec
                   ^ ((uint64_t)getpid() << 40) ^ 0x9e3779b97f4a7c15ull;
    status = loop_main();
    return status != 0 || run_failed() ? 1 : 0;
}
