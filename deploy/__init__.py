"""Running lrx: the embedded broker, topic provisioning, process settings and the `lrx` command."""
