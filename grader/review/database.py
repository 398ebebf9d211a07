"""Opening the review workspace's database: SQLite in WAL mode by default, any SQLAlchemy URL as is.

SQLite settings, on every connection (an event listener, since PRAGMAs other than journal_mode
last only for the connection):

- `journal_mode=WAL`: readers never block the TA who saves, nor the TA who saves them; a
  process killed with SIGKILL loses no committed transaction (the WAL is replayed when reopened).
- `synchronous=FULL`: each commit waits for the WAL to reach the disk. NORMAL is also safe against
  a killed process, but a power cut or a kernel crash may then lose the last commits; a TA's score
  is typed by hand and a save here is one small fsync (milliseconds, against a 50 ms budget per
  save), so a save that returned survives a power cut as well.
- `foreign_keys=ON`: SQLite does not check them otherwise.
- a 30 s busy timeout, and write transactions that begin with `BEGIN IMMEDIATE`
  (`writing(engine)`): a read-then-write transaction that begins deferred can fail at once with
  "database is locked" when another writer committed in between; an immediate one waits its turn.

WAL needs the database on a local disk (not NFS or SMB): for a shared department server, pass a
PostgreSQL URL (postgresql://user@host/db); the store's compare-and-set saves need no locks there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from grader.review.schema import Base

DATABASE_NAME = "review.sqlite"
BUSY_TIMEOUT_SECONDS = 30.0
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BEGIN_OPTION = "review_begin"


def default_database(out_dir: str | Path) -> Path:
    """Where the workspace of a graded output folder lives by default: OUT/review.sqlite."""
    return Path(out_dir) / DATABASE_NAME


def open_database(url_or_path: str | Path) -> Engine:
    """An engine on the workspace's database, its tables created. A path (str or Path) is a SQLite
    file (its folder must exist); a string like `postgresql://...` or `sqlite:///...` is used as is."""
    url = _url(url_or_path)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
        _configure_sqlite(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    Base.metadata.create_all(engine)
    return engine


def writing(engine: Engine) -> Engine:
    """The engine whose transactions are for writing: on SQLite they begin with BEGIN IMMEDIATE."""
    return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})


def _url(url_or_path: str | Path) -> URL:
    if isinstance(url_or_path, str) and _URL.match(url_or_path):
        return make_url(url_or_path)
    path = Path(url_or_path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist; the review database is made "
                                "inside an existing (graded output) folder")
    return URL.create("sqlite", database=str(path))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own BEGIN handling is off; SQLAlchemy's "begin" event below emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")
