"""Edge channels on the hub server: their signed TUF metadata, bundle history and device reports."""
