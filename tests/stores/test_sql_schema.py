"""SqlStore.schema: what reflection reports about tables, on every backend."""

from __future__ import annotations

from retentiond.stores.base import ColumnKind, ForeignKey, OnDelete

TYPES = {
    "sqlite": {"stamp": "DATETIME", "stamptz": "DATETIME", "blob": "BLOB", "double": "REAL"},
    "postgresql": {
        "stamp": "TIMESTAMP",
        "stamptz": "TIMESTAMPTZ",
        "blob": "BYTEA",
        "double": "DOUBLE PRECISION",
    },
    "mariadb": {"stamp": "DATETIME", "stamptz": "DATETIME", "blob": "BLOB", "double": "DOUBLE"},
}

KINDS = """
CREATE TABLE kinds (
    id INTEGER PRIMARY KEY,
    name VARCHAR(40) NOT NULL,
    note TEXT,
    code VARCHAR(12) UNIQUE,
    email VARCHAR(80),
    part_a INTEGER,
    part_b INTEGER,
    big BIGINT,
    small SMALLINT,
    amount DECIMAL(10, 2),
    ratio {double},
    born DATE NOT NULL,
    seen_at {stamp},
    seen_tz {stamptz},
    active BOOLEAN,
    photo {blob},
    CONSTRAINT uq_parts UNIQUE (part_a, part_b)
)
"""

PARENT_AND_CHILDREN = [
    "CREATE TABLE parent (id INTEGER PRIMARY KEY, boss_id INTEGER,"
    " CONSTRAINT fk_boss FOREIGN KEY (boss_id) REFERENCES parent (id) ON DELETE SET NULL)",
    # Inline, column-level: SQLAlchemy's SQLite reflection loses this ON DELETE.
    "CREATE TABLE inline_child (id INTEGER PRIMARY KEY,"
    " parent_id INTEGER REFERENCES parent (id) ON DELETE CASCADE)",
    "CREATE TABLE null_child (id INTEGER PRIMARY KEY, parent_id INTEGER,"
    " CONSTRAINT fk_null FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE SET NULL)",
    "CREATE TABLE restrict_child (id INTEGER PRIMARY KEY, parent_id INTEGER,"
    " CONSTRAINT fk_restrict FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE RESTRICT)",
    "CREATE TABLE noaction_child (id INTEGER PRIMARY KEY, parent_id INTEGER, CONSTRAINT"
    " fk_noaction FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE NO ACTION)",
    "CREATE TABLE plain_child (id INTEGER PRIMARY KEY, parent_id INTEGER,"
    " CONSTRAINT fk_plain FOREIGN KEY (parent_id) REFERENCES parent (id))",
]


def _shape(schema):
    return {
        name: (c.kind, c.nullable, c.length, c.unique, c.timezone)
        for name, c in schema.columns.items()
    }


def _unnamed(fks):
    return {(fk.table, fk.columns, fk.ref_table, fk.ref_columns, fk.on_delete) for fk in fks}


def test_columns_report_kind_length_nullability_uniqueness_and_timezone(db, sql_store):
    """Each column's kind, length, nullability, uniqueness and timezone flag are reflected."""
    db.run(KINDS.format(**TYPES[db.kind]), "CREATE UNIQUE INDEX ix_kinds_email ON kinds (email)")
    aware = db.kind == "postgresql"
    expected = {
        "id": (ColumnKind.INTEGER, False, None, True, False),
        "name": (ColumnKind.TEXT, False, 40, False, False),
        "note": (ColumnKind.TEXT, True, None, False, False),
        "code": (ColumnKind.TEXT, True, 12, True, False),
        "email": (ColumnKind.TEXT, True, 80, True, False),
        "part_a": (ColumnKind.INTEGER, True, None, False, False),
        "part_b": (ColumnKind.INTEGER, True, None, False, False),
        "big": (ColumnKind.INTEGER, True, None, False, False),
        "small": (ColumnKind.INTEGER, True, None, False, False),
        "amount": (ColumnKind.DECIMAL, True, None, False, False),
        "ratio": (ColumnKind.FLOAT, True, None, False, False),
        "born": (ColumnKind.DATE, False, None, False, False),
        "seen_at": (ColumnKind.DATETIME, True, None, False, False),
        "seen_tz": (ColumnKind.DATETIME, True, None, False, aware),
        "active": (ColumnKind.BOOLEAN, True, None, False, False),
        "photo": (ColumnKind.BINARY, True, None, False, False),
    }

    schema = sql_store.schema("kinds")

    assert ("kinds", ("id",), expected) == (schema.name, schema.primary_key, _shape(schema))


def test_foreign_keys_report_their_on_delete_rule(db, sql_store):
    """Every foreign key pointing at a table is found, with its ON DELETE rule, inline ones too."""
    db.run(*PARENT_AND_CHILDREN)
    # Without a clause the rule is NO ACTION, except on InnoDB, whose default is RESTRICT.
    default = OnDelete.RESTRICT if db.kind == "mariadb" else OnDelete.NO_ACTION
    expected = {
        ("parent", ("boss_id",), "parent", ("id",), OnDelete.SET_NULL),
        ("inline_child", ("parent_id",), "parent", ("id",), OnDelete.CASCADE),
        ("null_child", ("parent_id",), "parent", ("id",), OnDelete.SET_NULL),
        ("restrict_child", ("parent_id",), "parent", ("id",), OnDelete.RESTRICT),
        ("noaction_child", ("parent_id",), "parent", ("id",), OnDelete.NO_ACTION),
        ("plain_child", ("parent_id",), "parent", ("id",), default),
    }

    assert expected == _unnamed(sql_store.schema("parent").referenced_by)


def test_references_are_the_tables_own_foreign_keys_with_their_names(db, sql_store):
    """A table's own foreign keys are its references, named as declared."""
    db.run(*PARENT_AND_CHILDREN)
    expected = (
        ForeignKey("null_child", ("parent_id",), "parent", ("id",), OnDelete.SET_NULL, "fk_null"),
    )

    assert expected == sql_store.schema("null_child").references


def test_inline_reference_is_cascade_on_sqlite_too(db, sql_store):
    """An inline REFERENCES ... ON DELETE CASCADE is CASCADE (SQLite's reflection misses it)."""
    db.run(*PARENT_AND_CHILDREN)

    references = sql_store.schema("inline_child").references

    assert [OnDelete.CASCADE] == [fk.on_delete for fk in references]


def test_schema_qualified_names_reflect_the_same_table(db, sql_store):
    """``schema.table`` finds the table, and its foreign keys name tables the same way."""
    db.run(*PARENT_AND_CHILDREN)
    prefix = f"{db.schema_name}."

    schema = sql_store.schema(f"{prefix}null_child")

    expected = (
        f"{prefix}null_child",
        {(f"{prefix}null_child", ("parent_id",), f"{prefix}parent", ("id",), OnDelete.SET_NULL)},
    )
    assert expected == (schema.name, _unnamed(schema.references))


def test_missing_table_is_none(db, sql_store):
    """A table that does not exist reflects as None."""
    db.run("CREATE TABLE present (id INTEGER PRIMARY KEY)")

    assert None is sql_store.schema("absent")


def test_table_without_primary_key_has_an_empty_key(db, sql_store):
    """A table without a primary key is reported with primary_key == (), not skipped."""
    db.run("CREATE TABLE loose (a INTEGER, b VARCHAR(5))")

    schema = sql_store.schema("loose")

    assert ((), ["a", "b"]) == (schema.primary_key, list(schema.columns))


def test_reflections_are_cached_until_forgotten(db, sql_store):
    """A reflected table is cached; forget() makes the next call see the live table."""
    db.run("CREATE TABLE growing (id INTEGER PRIMARY KEY)")
    before = list(sql_store.schema("growing").columns)
    db.run("ALTER TABLE growing ADD COLUMN extra INTEGER")
    cached = list(sql_store.schema("growing").columns)

    sql_store.forget("growing")

    assert (["id"], ["id"], ["id", "extra"]) == (
        before,
        cached,
        list(sql_store.schema("growing").columns),
    )
