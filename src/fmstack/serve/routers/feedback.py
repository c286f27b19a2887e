"""``POST /v1/feedback``: tell the server whether one of its recent classifications was right.

The body names the answer by the request id the classification came back with (``X-Request-Id``, and
``request_id`` in its body) and the text's ``index`` in that request, and gives the right ``label`` or
just ``correct``. Checked against what was predicted (``serve.prediction_log``) and written to the log.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from fmstack.errors import Unsupported
from fmstack.serve.payloads import NumpyJSON, openapi_body, read_body
from fmstack.serve.schemas import FeedbackRequest, FeedbackResponse, OpenAIErrorBody, error_responses
from fmstack.serve.state import state_of

router = APIRouter(tags=["feedback"])
_ANSWERS = {
    400: "This server does not log predictions (start it with --log-predictions RATE).",
    404: "The request id is unknown here, or older than --feedback-window.",
    409: "Feedback for this text of this request was given already.",
    422: "The body does not fit the schema, the label is not one the model knows, or the index is out of range.",
    503: "The feedback log's queue is full (a slow or failing disk); retry.",
}


@router.post(
    "/v1/feedback",
    response_model=FeedbackResponse,
    responses={
        **error_responses(413, 415, 421),
        **{code: {"model": OpenAIErrorBody, "description": why} for code, why in _ANSWERS.items()},
    },
    openapi_extra=openapi_body(FeedbackRequest),
)
async def feedback(request: Request) -> Response:
    """Record whether a recent classification was right. 400: this server does not log predictions;
    404: the request id is unknown or older than the feedback window; 409: this text was answered
    already; 422: a label the model does not know, or an index out of range."""
    body = await read_body(request, FeedbackRequest)
    log = state_of(request).predictions
    if log is None:
        raise Unsupported(
            "this server does not log predictions, so it cannot take feedback: start it with "
            "--log-predictions RATE (e.g. 1.0)"
        )
    state = state_of(request)

    def labels_of(version: str) -> tuple[str, ...] | None:
        loaded = [m.current for m in state.models.models.values() if m.current is not None]
        return next((c.runtime.info.labels for c in loaded if c.version.ref == version), None)

    answer = log.feedback(body.request_id, body.index, body.label, body.correct, body.comment, labels_of)
    request.state.model = answer.model
    return NumpyJSON(
        {
            "request_id": answer.request_id,
            "index": answer.index,
            "model": answer.model,
            "version": answer.version,
            "predicted": answer.predicted,
            "label": answer.label,
            "correct": answer.correct,
        }
    )
