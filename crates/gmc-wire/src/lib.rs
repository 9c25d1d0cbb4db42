//! Ingest codecs of gmc (under construction in this change).
