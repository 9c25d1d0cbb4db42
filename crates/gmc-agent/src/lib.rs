//! Host and process collectors (node_exporter compatible) with a durable spool for remote_write delivery.
