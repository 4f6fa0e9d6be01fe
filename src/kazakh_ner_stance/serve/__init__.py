"""A local inference server over `Predictor` (`scripts/serve.py`, `kns-serve`) and its page.

    python scripts/serve.py checkpoint=artifacts/runs/NAME/model [stance_checkpoint=DIR] [port=8000]

Routes: POST /predict (predict.py's JSON input and output), GET /health, GET / (a page that
highlights entities and colours stance targets), GET /docs and /openapi.json. Needs the
`serve` extra (fastapi, uvicorn)."""

from .app import ServeLimits, create_app, parse_request, run_serve

__all__ = ["ServeLimits", "create_app", "parse_request", "run_serve"]
