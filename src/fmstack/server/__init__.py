"""The hub server: the hub's HTTP API with accounts, organisations, tokens, private repos, the native
transfer API and an audit log of writes (``fmstack server ...``).

``create_app(settings)`` in ``app.py`` builds the FastAPI application; ``access.py`` decides who may
read or write what; ``accounts.py`` stores users, organisations, tokens and the audit log. The server
sits on top of the hub and knows nothing of training, compression or serving.
"""
