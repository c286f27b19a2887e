"""Request and response bodies of every endpoint, in one place.

``/v1/embeddings`` follows OpenAI's schema (so the official client works unchanged), ``/v2/...`` the
KServe Open Inference Protocol v2, ``/v1/classify`` is fmstack's own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_TRUNCATE = (
    "Cut a text longer than the model accepts (in characters: --max-input-chars; in tokens: the "
    "model's max_length) to what it accepts, instead of refusing the request (413 or 422)."
)

# -- OpenAI-compatible -----------------------------------------------------------------------------


class OpenAIError(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    error: OpenAIError


class KServeErrorBody(BaseModel):
    error: str


_ANSWERS = {
    400: "The model does not serve this task (the message names the endpoint that does).",
    404: "No such model is served here, or no such path.",
    408: "The request body did not arrive within --body-timeout.",
    413: "Over a limit: --max-body-bytes, --max-inputs or --max-input-chars (the message names it).",
    415: "The body is not declared as JSON: send 'Content-Type: application/json'.",
    421: "The Host header is not one of --allowed-hosts.",
    422: "The body does not fit the schema, or a text is blank or longer than the model accepts.",
    429: "The model's queue is full (--max-queue); Retry-After says when to retry.",
    503: "The model is not loaded yet, or the server is shutting down.",
    504: "No answer within --request-timeout.",
}
INFERENCE_ERRORS = (400, 404, 408, 413, 415, 421, 422, 429, 503, 504)


def error_responses(*codes: int, kserve: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses`` of a route that may answer ``codes``, in the error shape of its API, for the
    OpenAPI schema (FastAPI documents only 200 and its own 422 shape otherwise)."""
    model = KServeErrorBody if kserve else OpenAIErrorBody
    return {code: {"model": model, "description": _ANSWERS[code]} for code in codes}


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    reason: str | None = Field(None, description="Why not ready: loading, draining, or the load error.")
    models: dict[str, str | None] = Field(description="Each served name and the version it serves.")
    load_failures: dict[str, str] | None = Field(
        None, description="Versions a served ref moved to that failed to load (the old one still serves)."
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    version: str  # the hub version being served, e.g. acme/intent:3
    task: str
    platform: str
    base: str | None = None  # adapters: the base version they share in memory


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class EmbeddingRequest(BaseModel):
    # OpenAI's clients send extra fields (user, ...); accept and ignore them like OpenAI does.
    model_config = ConfigDict(extra="ignore")
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    truncate: bool = Field(False, description=_TRUNCATE)

    @field_validator("input", mode="before")
    @classmethod
    def _no_token_ids(cls, value: object) -> object:
        # OpenAI's API also takes token ids; say why they are refused rather than list type errors.
        if isinstance(value, list) and any(isinstance(item, int | list) for item in value):
            raise ValueError(
                "'input' holds token ids; this server takes text: send a string or a list of strings"
            )
        return value


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


# -- classification --------------------------------------------------------------------------------


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    input: str | list[str] = Field(description="One text or a list of texts.")
    truncate: bool = Field(False, description=_TRUNCATE)


class Classification(BaseModel):
    index: int
    label: str
    scores: dict[str, float]
    fallback: bool = Field(
        False,
        description="The top score is below the model's fallback threshold (--fallback-threshold, else "
        "the version's own): hand this request to a human. Always false without a threshold.",
    )


class ClassifyResponse(BaseModel):
    model: str
    version: str
    data: list[Classification]
    usage: Usage
    request_id: str = Field(
        description="This answer's id (also the X-Request-Id header): name it in POST /v1/feedback."
    )


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1, max_length=200, description="The classification's request_id.")
    index: int = Field(0, ge=0, description="Which text of that request (its data[].index; 0 for one text).")
    label: str | None = Field(None, min_length=1, max_length=1000, description="The right label.")
    correct: bool | None = Field(
        None, description="Whether the predicted label was right (instead of label)."
    )
    comment: str | None = Field(None, max_length=2000, description="Free text, kept with the feedback.")

    @model_validator(mode="after")
    def _label_or_correct(self) -> FeedbackRequest:
        if (self.label is None) == (self.correct is None):
            raise ValueError("send either 'label' (the right label) or 'correct' (true or false), not both")
        return self


class FeedbackResponse(BaseModel):
    request_id: str
    index: int
    model: str
    version: str = Field(description="The version that made the prediction.")
    predicted: str
    label: str | None = Field(description="The right label as recorded (null: only 'correct': false).")
    correct: bool


# -- search ----------------------------------------------------------------------------------------

FilterValue = str | int | float | bool


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="A served search version (an embedding model with its vector index).")
    query: str | list[str] = Field(description="One query text or a list of them.")
    top_k: int = Field(10, ge=1, le=1000, description="Items to return per query, best first.")
    filter: dict[str, FilterValue | list[FilterValue]] | None = Field(
        None,
        description="Metadata filters: column -> value, or a list of values any of which matches; every "
        "column must match. Filtering happens inside the search, so top_k matching items come back "
        "while that many exist.",
    )
    truncate: bool = Field(False, description=_TRUNCATE)


class SearchHit(BaseModel):
    id: str
    text: str
    score: float = Field(description="Cosine similarity between the query and the item.")
    metadata: dict[str, Any]


class SearchResult(BaseModel):
    index: int
    hits: list[SearchHit]


class SearchResponse(BaseModel):
    model: str
    version: str
    data: list[SearchResult]
    usage: Usage


# -- KServe Open Inference Protocol v2 -------------------------------------------------------------


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2Ready(BaseModel):
    ready: bool


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ConfigTensor(BaseModel):
    """A tensor in Triton's model configuration form (``TYPE_STRING``, ``TYPE_FP32``)."""

    name: str
    data_type: str
    dims: list[int]


class ModelConfig(BaseModel):
    """``GET /v2/models/{name}/config``: the subset of Triton's model configuration that describes
    a served model (``max_batch_size`` 0: the batch dimension is part of ``dims``; the server batches
    on its own)."""

    name: str
    platform: str
    backend: str
    max_batch_size: int
    input: list[ConfigTensor]
    output: list[ConfigTensor]
    version_policy: dict[str, Any]
    parameters: dict[str, dict[str, str]]


class InferTensor(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    shape: list[int]
    datatype: str
    # Absent when the tensor's bytes follow the JSON (binary tensor data extension:
    # parameters.binary_data_size says how many).
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class RequestedOutput(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    # binary_data (bool): this output's bytes after the JSON; classification (int k): the top k
    # scores as "score:index:label" strings.
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    inputs: list[InferTensor] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None
    # binary_data_output (bool): the default binary_data of every output that does not set its own;
    # truncate (bool): cut texts longer than the model accepts instead of refusing them, as the
    # OpenAI routes' "truncate" does.
    parameters: dict[str, Any] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[InferTensor]
