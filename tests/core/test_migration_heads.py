"""Every helper's migration chains onto the last: the store always has exactly one head."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from greenloop.store import MIGRATIONS


def test_the_migrations_have_exactly_one_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"several Alembic heads: {heads}; set down_revision to main's head"
