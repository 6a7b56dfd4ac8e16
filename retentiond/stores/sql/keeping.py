"""The tables retentiond keeps inside a store: batch markers, done records, quarantine tables.

A batch marker is written in the same transaction as the batch it describes, so after a crash
the marker alone tells whether the batch happened (and what it did).  A quarantine table holds
rows moved out of one source table: the same columns, no constraints, and bookkeeping columns
(batch, run, rule, when, release date) prefixed ``_rtd_`` so they cannot clash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from retentiond.stores.base import ColumnKind, TableSchema

if TYPE_CHECKING:
    from retentiond.stores.sql.reflect import Reflected

PAYLOAD = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
"""Batch payloads list every key acted on: more than MySQL's 64 KiB TEXT holds."""

VOID = '{"void":true}'
"""The payload of a marker that settles a batch as never applied (written by recovery)."""

BATCH = "_rtd_batch"
RUN = "_rtd_run"
RULE = "_rtd_rule"
AT = "_rtd_at"
RELEASE = "_rtd_release"
BOOKKEEPING = (BATCH, RUN, RULE, AT, RELEASE)


def marker_table(name: str, schema: str | None = None) -> sa.Table:
    """The batch-marker table ``name``."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("batch_id", sa.String(36), primary_key=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("rule", sa.String(80), nullable=False),
        sa.Column("payload", PAYLOAD, nullable=False),
        schema=schema,
    )


def compress_payloads_with_lz4(connection: sa.Connection, markers: sa.Table) -> None:
    """On a PostgreSQL (14 or later) built with lz4, compress marker payloads with it.

    A payload is ~90 kB a batch of 10,000 keys; pglz, the default, compresses it in ~2 ms,
    lz4 in ~0.5 ms (measured with psycopg, median of 50 inserts).
    """
    has_lz4 = connection.exec_driver_sql(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
    ).scalar()
    if has_lz4:
        name = connection.dialect.identifier_preparer.format_table(markers)
        connection.exec_driver_sql(f"ALTER TABLE {name} ALTER COLUMN payload SET COMPRESSION lz4")


def done_table(name: str) -> sa.Table:
    """The table of rows each pseudonymize rule has rewritten: (rule, key as text).

    For every key but a one-column integer one, and for integer keys recorded before the
    done-bits table existed.
    """
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("rule", _bytewise(80), primary_key=True),
        sa.Column("row_key", _bytewise(255), primary_key=True),
    )


WORD_BITS = 32
"""Keys a row of the done-bits table covers, one bit each: a mask every database ORs as BIGINT."""
_WORD_SHIFT = 5
_UNSIGNED_64 = (1 << 64) - 1


@dataclass(frozen=True)
class DoneTables:
    """The tables recording the rows pseudonymize rules rewrote, each None while it is absent."""

    keys: sa.Table | None = None
    """(rule, key as text): any primary key."""
    bits: sa.Table | None = None
    """(rule, word, bits): one-column integer keys, 32 to a row."""


def done_bits_table(name: str) -> sa.Table:
    """The rows each pseudonymize rule rewrote, for one-column integer keys.

    Key ``k`` is bit ``k & 31`` of the row ``(rule, k >> 5)``.  A batch of 10,000 keys sets
    a few hundred rows instead of inserting 10,000 index entries: 4.5 ms against 44 ms for
    the text table on PostgreSQL (psycopg, 60 batches from 1,000,000 keys scattered over 2M
    ids), and the table is ~20 times smaller.
    """
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("rule", _bytewise(80), primary_key=True),
        sa.Column("word", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("bits", sa.BigInteger, nullable=False),
    )


def records_bits(schema: TableSchema) -> bool:
    """Whether the done records of ``schema``'s rows are bits: a one-column integer key."""
    key = schema.primary_key
    return len(key) == 1 and schema.columns[key[0]].kind is ColumnKind.INTEGER


def key_words(keys: Iterable[Any], family: str) -> dict[int, int]:
    """The done-bits rows of ``keys``: word -> mask, the word as the database shifts it.

    PostgreSQL and SQLite shift a signed BIGINT arithmetically (as Python shifts an int);
    MySQL shifts its two's complement as unsigned, so a negative key's word differs there.
    """
    words: dict[int, int] = {}
    unsigned = family == "mysql"
    for key in keys:
        word = ((key & _UNSIGNED_64) if unsigned else key) >> _WORD_SHIFT
        words[word] = words.get(word, 0) | 1 << (key & (WORD_BITS - 1))
    return words


def key_bit_recorded(done: sa.Table, rule: str, key: sa.ColumnElement[int]
                     ) -> sa.ColumnElement[bool]:
    """Whether ``rule`` recorded the integer ``key`` in the done-bits table ``done``."""
    # PostgreSQL shifts a BIGINT by an INTEGER only: the shift counts are INTEGERs.
    bit = sa.cast(key.bitwise_and(WORD_BITS - 1), sa.Integer)
    mask = sa.cast(sa.literal(1), sa.BigInteger).bitwise_lshift(bit)
    word = key.bitwise_rshift(sa.literal(_WORD_SHIFT, sa.Integer, literal_execute=True))
    return sa.exists().where(done.c.rule == rule, done.c.word == word,
                             done.c.bits.bitwise_and(mask) != 0)


def _bytewise(length: int) -> sa.types.TypeEngine[str]:
    """Text compared byte by byte on PostgreSQL (collation "C"), as keys only need equality.

    Its B-tree then orders entries without the locale's rules: inserting a batch's 10,000
    done keys took ~45 ms instead of ~52 (psycopg, with 200,000 to 600,000 keys recorded).
    """
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def key_text(columns: list[sa.ColumnElement[Any]]) -> sa.ColumnElement[Any]:
    """A row's primary key as one text value, the same in SQL on every database."""
    parts: sa.ColumnElement[Any] = sa.cast(columns[0], sa.String(255))
    for column in columns[1:]:
        parts = parts + sa.literal("\x1f", sa.String) + sa.cast(column, sa.String(255))
    return parts


def quarantine_name(prefix: str, table: str) -> str:
    """The quarantine table of ``table`` (same schema), e.g. ``retentiond_q_tickets``."""
    schema, _, name = table.rpartition(".")
    return f"{schema}.{prefix}{name}" if schema else f"{prefix}{name}"


def quarantine_index(shelf: sa.Table, family: str) -> sa.Index:
    """The index that finds a batch's rows in ``shelf``; created with the table.

    PostgreSQL: a BRIN index on ``_rtd_at``, which the rows of one batch share and which
    rises as batches are moved in, so each batch sits in a few block ranges.  A B-tree on
    ``_rtd_batch`` costs an insertion per row moved: quarantine ran at 0.77 of the
    hand-written loop with it and 1.04 without (bench/README.md); a BRIN costs about one
    per block range.  Lookups name both columns (:func:`batch_rows`).  Elsewhere, and in
    tables made before, a B-tree on ``_rtd_batch``.
    """
    if family == "postgresql":
        return sa.Index(None, shelf.c[AT], postgresql_using="brin")
    return sa.Index(None, shelf.c[BATCH])


def batch_rows(shelf: sa.Table, batch_id: str, quarantined_at: str) -> sa.ColumnElement[bool]:
    """The rows of one batch: one ``_rtd_at`` (for the BRIN index) and its id."""
    return sa.and_(shelf.c[AT] == quarantined_at, shelf.c[BATCH] == batch_id)


def quarantine_table(source: Reflected, name: str) -> sa.Table:
    """A quarantine table for ``source``: its columns, all nullable, plus the bookkeeping."""
    schema, _, bare = name.rpartition(".")
    columns = [sa.Column(c.name, c.type, nullable=True) for c in source.table.columns]
    return sa.Table(
        bare,
        sa.MetaData(),
        *columns,
        sa.Column(BATCH, sa.String(36), nullable=False),
        sa.Column(RUN, sa.String(36), nullable=False),
        sa.Column(RULE, sa.String(80), nullable=False),
        sa.Column(AT, sa.String(32), nullable=False),
        sa.Column(RELEASE, sa.String(32), nullable=False),
        schema=schema or None,
    )
