"""The models and the Alembic migrations describe the same schema, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from db.models import Base
from db.session import create_engine


async def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            def diff(sync_conn):  # type: ignore[no-untyped-def]
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(context, Base.metadata)

            differences = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == [], f"models and migrations differ: {differences}"


async def test_every_table_has_its_constraints(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            def uniques(sync_conn):  # type: ignore[no-untyped-def]
                insp = inspect(sync_conn)
                return {
                    "answers": insp.get_unique_constraints("answers"),
                    "inbox": insp.get_unique_constraints("inbox"),
                    "indexes": insp.get_indexes("inspections"),
                }

            found = await conn.run_sync(uniques)
    finally:
        await engine.dispose()
    # The business keys that make redelivered updates harmless.
    assert any(set(u["column_names"]) == {"inspection_id", "item_key"} for u in found["answers"])
    assert any(u["column_names"] == ["update_id"] for u in found["inbox"])
    assert any(i["name"] == "uq_inspections_open_per_site" and i["unique"]
               for i in found["indexes"])
