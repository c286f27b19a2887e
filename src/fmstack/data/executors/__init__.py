"""Where shard tasks run: ``local`` (a process pool) or ``ray`` (Ray Data). See ``registry.py``."""
