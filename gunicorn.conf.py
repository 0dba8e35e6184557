"""gunicorn settings for `make run` and production; override any with GUNICORN_CMD_ARGS."""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = 30
graceful_timeout = 20
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def when_ready(server):  # noqa: ANN001, ANN201 - gunicorn hook signature
    """Print the first-run admin set-up link once, from the master process.

    The current link, not a fresh one: with several hosts on one database every
    master prints the same link, and a restart does not end the link shown before.
    """
    from app import create_app
    from app.cli import announce_setup_link
    from app.extensions import db

    app = create_app(serving=True)  # as the workers are: they fork from this process
    if "DOGEAR_BASE_URL" not in os.environ:
        host, port = server.address[0][:2]
        app.config["BASE_URL"] = f"http://{host}:{port}"
    with app.app_context():
        announce_setup_link(fresh=False)
        db.engine.dispose()
