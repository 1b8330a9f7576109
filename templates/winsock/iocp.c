#error "IOCP output is being written"
