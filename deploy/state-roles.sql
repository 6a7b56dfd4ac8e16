-- deploy/state-roles.sql: what each of retentiond's roles may do in its PostgreSQL state database.
--
--   owner    owns the tables and the append-only trigger function; runs 'retentiond state
--            upgrade' and this file, nothing else (no service keeps its password).
--   daemon   the daemon, 'run --once', 'plan', 'hold add', 'hold release' and 'quarantine
--            restore': appends to the ledger (SELECT and INSERT: no UPDATE, DELETE or
--            TRUNCATE), places and releases holds, records restore exemptions and erasure requests (INSERT only),
--            reads the installation secret and the schema revision.  It owns nothing,
--            so it cannot drop, disable or replace the triggers that keep the ledger
--            append-only, and opening the database runs no DDL.
--   auditor  reads, writes nothing: 'audit verify', 'audit report', 'audit export',
--            'audit summary', 'state status'.
--
-- Run it as the owner, in the state database, after 'retentiond state upgrade' and again after
-- every upgrade (a revision may add a table; granting twice changes nothing):
--
--   psql -v ON_ERROR_STOP=1 -v daemon=retentiond -v auditor=retentiond_audit \
--        -U retentiond_owner -d retentiond -f deploy/state-roles.sql
--
-- The advisory locks the daemon takes (one ledger append at a time, one replica per rule)
-- need no grant.  deploy/README.md shows how the roles and the database are made.

-- Only the roles named below, whatever PUBLIC was given before.
REVOKE ALL ON audit_log, holds, restore_exemptions, erasure_requests, retentiond_meta,
    retentiond_alembic_version FROM PUBLIC;

-- The daemon: append to the ledger, place holds and release them (a release fills in only
-- these three columns: what a hold covers, and why, stays as it was placed), read the rest.
GRANT SELECT, INSERT ON audit_log TO :"daemon";
GRANT SELECT, INSERT, UPDATE (released_at, released_by, release_reason) ON holds TO :"daemon";
GRANT SELECT, INSERT ON restore_exemptions TO :"daemon";
GRANT SELECT, INSERT ON erasure_requests TO :"daemon";
GRANT SELECT ON retentiond_meta, retentiond_alembic_version TO :"daemon";

-- The auditor: read the ledger, the holds and the erasure requests (to preview them); not
-- retentiond_meta, where the digest key is.
GRANT SELECT ON audit_log, holds, restore_exemptions, erasure_requests,
    retentiond_alembic_version TO :"auditor";
