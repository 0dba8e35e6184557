"""`/healthz`: is this Dogear able to serve? For self-hosters' probes and load balancers.

It answers 503 with the reason when the database is not the one Dogear expects (the
file missing, replaced, unreadable, or without a schema). `?deep=1` also asks whether
a job worker has been alive in the last few minutes (articles are fetched there).
"""

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from app import db as database
from app import jobs
from app.extensions import csrf, limiter

bp = Blueprint("health", __name__)

WORKER_SILENCE_LIMIT = 180  # seconds without a heartbeat (it beats every minute)


@bp.get("/healthz")
@limiter.exempt
@csrf.exempt
def healthz() -> ResponseReturnValue:
    """200 with the schema version when all is well, else 503 with the reason."""
    try:
        version = database.check_schema()
    except database.DatabaseProblem as problem:
        return jsonify(status="error", database=str(problem)), 503
    body: dict[str, object] = {"status": "ok", "database": "ok", "schema": version}
    if request.args.get("deep"):
        silence = jobs.seconds_since_heartbeat()
        if silence is None or silence > WORKER_SILENCE_LIMIT:
            body.update(
                status="error",
                worker="no job worker has been seen"
                + ("" if silence is None else f" for {int(silence)} seconds"),
            )
            return jsonify(body), 503
        body["worker"] = "ok"
    return jsonify(body)
