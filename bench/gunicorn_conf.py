"""gunicorn settings for the benchmark: the project's own, minus per-request logging.

Both the trivial app and Dogear are served with this file, so they differ only in the
application. The access log is off (at thousands of requests per second it measures
the terminal), and the first-run hook is skipped (the bench database has no admin).
"""

import runpy
from pathlib import Path

_settings = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))

workers = _settings["workers"]
worker_class = _settings["worker_class"]
timeout = _settings["timeout"]
graceful_timeout = _settings["graceful_timeout"]
forwarded_allow_ips = _settings["forwarded_allow_ips"]
accesslog = None
errorlog = "-"
loglevel = "warning"
