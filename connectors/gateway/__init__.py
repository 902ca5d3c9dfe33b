"""The ingest gateway: the HTTP door through which an LMS puts learning records into lrx."""
