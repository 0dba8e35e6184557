"""The limit: a WSGI app that does nothing, served with the same gunicorn settings."""

BODY = b"ok\n"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]
