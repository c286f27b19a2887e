"""HTTP routers, one per resource; ``app.create_app`` mounts them all."""
