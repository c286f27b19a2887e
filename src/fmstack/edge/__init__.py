"""Edge: signed model bundles for devices (python-tuf metadata over the hub server).

``keys`` makes and rotates the signing keys, ``bundle`` turns an ONNX version into a bundle's files,
``repository`` signs a channel's next TUF metadata, ``verify`` checks uploaded metadata on the server.
The device side (runtime, agent) is the separate ``fmstack-edge`` distribution in ``edge/``; it shares
no code with this package, only the bundle format (``bundle.py`` documents it).
"""
