"""Outside-in probes (seed 004): ping, TCP connects, path, HTTP and DNS, with own sockets."""
