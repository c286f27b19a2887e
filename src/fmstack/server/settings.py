"""Settings of one hub server process: where the hub is, who may read anonymously, and the limits.

``fmstack server start`` and Python callers (``create_app(ServerSettings(hub=Settings.at(home)))``)
build the same model. With several workers, uvicorn starts each in a fresh process through an import
string, so the CLI hands the settings over as JSON (``to_worker_env`` / ``from_worker_env``); this is a
hand-over between fmstack's own processes, not a setting users write.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from fmstack.settings import Settings

WORKER_ENV = "FMSTACK_SERVER_SETTINGS_JSON"


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    hub: Settings = Field(default_factory=Settings.from_env, description="The hub the server serves.")
    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0 for every interface).")
    port: int = Field(8765, ge=0, le=65535, description="TCP port.")
    workers: int = Field(1, ge=1, le=64, description="Server processes; all share the hub's database.")
    anonymous_read: bool = Field(True, description="Let callers without a token read public repos.")
    max_upload_bytes: int = Field(
        50 * 2**30, ge=1, description="Largest file a push may upload, in bytes (413 above)."
    )
    max_pending_bytes: int = Field(
        100 * 2**30,
        ge=1,
        description="Bytes one user's unfinished uploads may hold on the server at once, in bytes (413 "
        "above: finish or give up a push first; partial uploads untouched for 7 days are swept).",
    )
    max_body_bytes: int = Field(
        64 * 2**20,
        ge=1024,
        description="Largest JSON request body (manifest, card, run record), in bytes (413 above); "
        "uploads have their own limit.",
    )
    max_failed_auth: int = Field(
        10, ge=1, description="Failed token checks one address may make per minute before 429."
    )

    def to_worker_env(self) -> dict[str, str]:
        return {WORKER_ENV: self.model_dump_json()}

    @classmethod
    def from_worker_env(cls) -> ServerSettings:
        return cls.model_validate_json(os.environ[WORKER_ENV])
