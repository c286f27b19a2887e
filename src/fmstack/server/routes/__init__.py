"""One router per resource: ``accounts`` (whoami, health), ``repos`` (read and visibility),
``transfer`` (push and pull of blobs and versions)."""
