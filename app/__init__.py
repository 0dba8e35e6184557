"""Dogear: a self-hosted, multi-user reading list."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from app.config import MIGRATIONS, ROOT, load_config

__all__ = ["create_app"]


def create_app(test_config: dict[str, Any] | None = None, *, serving: bool = False) -> Flask:
    """Build the app. `templates/`, `static/` and `instance/` sit beside `app/`.

    `serving` builds it for the web workers (wsgi.py): without the command line and
    the migration tool, whose Alembic no request needs and which cost each worker
    about 12 MB."""
    instance_path = Path(os.environ.get("DOGEAR_INSTANCE_PATH", ROOT / "instance")).resolve()
    if test_config and "INSTANCE_PATH" in test_config:
        instance_path = Path(test_config["INSTANCE_PATH"])
    instance_path.mkdir(parents=True, exist_ok=True)
    app = Flask(
        __name__,
        instance_path=str(instance_path),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    load_config(app, test_config)
    register_logging(app)
    register_extensions(app)
    register_proxy(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_request_hooks(app)
    register_template_helpers(app)
    if not serving:
        register_commands(app)
    return app


def register_logging(app: Flask) -> None:
    if not app.debug and not app.testing:
        app.logger.setLevel(logging.INFO)


def register_extensions(app: Flask) -> None:
    from app import (
        auth,
        jobs,
        ratelimit,  # noqa: F401 - registers the dogear+db:// rate-limit storage
        signing,
    )
    from app import db as database
    from app.catalog import version
    from app.extensions import csrf, db, htmx, limiter, login_manager
    from app.security import named_parts_only

    db.init_app(app)
    version.watch()
    csrf.init_app(app)
    signing.init_app(app)
    htmx.init_app(app)
    app.request_class = named_parts_only(app.request_class)  # after htmx sets its own
    limiter.init_app(app)
    login_manager.init_app(app)
    auth.configure_login(login_manager)
    jobs.init_app(app)
    with app.app_context():
        database.configure_engine(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])


def register_proxy(app: Flask) -> None:
    """Believe the reverse proxies in front of Dogear, and only them; answer only to
    the host names Dogear is served under.

    With PROXY_FIX = n, the client address, scheme and host are taken from the n-th
    X-Forwarded-For/-Proto/-Host value from the right: the ones the n proxies added, so
    whatever the client itself put in those headers is ignored. With 0 (the default)
    the headers change nothing. The host check runs inside ProxyFix, so it sees the
    host the proxy forwarded (see `app.security.TrustedHostsMiddleware`)."""
    from app.security import TrustedHostsMiddleware

    if app.config["TRUSTED_HOSTS"]:
        app.wsgi_app = TrustedHostsMiddleware(app.wsgi_app, app.config["TRUSTED_HOSTS"])  # type: ignore[method-assign]
    if hops := app.config["PROXY_FIX"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


class RowIdConverter(IntegerConverter):
    """`<int:...>` that only matches ids a database column can hold (1 to 2**31 - 1,
    PostgreSQL's integer; SQLite's are wider),
    so an absurd id is a 404 rather than an overflow inside the database driver."""

    def __init__(self, url_map: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, **kwargs)


def register_blueprints(app: Flask) -> None:
    app.url_map.converters["int"] = RowIdConverter
    from app.admin.views import bp as admin_bp
    from app.auth.views import bp as auth_bp
    from app.browse.views import bp as browse_bp
    from app.catalog.admin_views import bp as catalog_admin_bp
    from app.health import bp as health_bp
    from app.imports.views import bp as imports_bp
    from app.lists.views import bp as lists_bp
    from app.pwa import bp as pwa_bp
    from app.search.views import bp as search_bp
    from app.sources.views import bp as sources_bp
    from app.tags.views import bp as tags_bp

    for bp in (browse_bp, search_bp, lists_bp, auth_bp, admin_bp, health_bp, pwa_bp):
        app.register_blueprint(bp)
    app.register_blueprint(catalog_admin_bp)
    app.register_blueprint(sources_bp)
    app.register_blueprint(imports_bp)
    app.register_blueprint(tags_bp)


def register_errorhandlers(app: Flask) -> None:
    from app.errors import register

    register(app)


def register_request_hooks(app: Flask) -> None:
    from app.security import refuse_unexpected_files, refuse_unstorable_text, set_security_headers

    app.before_request(refuse_unexpected_files)
    app.before_request(refuse_unstorable_text)
    app.after_request(set_security_headers)


def register_template_helpers(app: Flask) -> None:
    from app.templating import register

    register(app)


def register_commands(app: Flask) -> None:
    """The `dogear` commands, Flask-Migrate's `db` among them."""
    from flask_migrate import Migrate

    from app.cli import register
    from app.extensions import db

    Migrate(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    register(app)
