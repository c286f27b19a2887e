"""fmstack's inference server: hub versions behind a batching HTTP API.

    from fmstack.serve import ServeSettings, start_server
    with start_server(ServeSettings(models=["acme/intent@production"], port=0)) as server:
        httpx.post(f"{server.url}/v1/classify", json={"model": "acme/intent@production", "input": "hi"})

``create_app(settings)`` gives the FastAPI app itself; ``run(settings)`` serves in the foreground
(``fmstack serve``). It knows the hub and the servable-model descriptor of ``fmstack.compress``;
it knows nothing of the CLI.
"""

from fmstack.serve.app import create_app
from fmstack.serve.server import RunningServer, ServeFailed, run, start_server
from fmstack.serve.settings import ServeSettings

__all__ = ["RunningServer", "ServeFailed", "ServeSettings", "create_app", "run", "start_server"]
