-- composite_keys on postgresql: tables and rows, as of 2026-03-15T12:00:00Z.
-- accounts has a two-column key (tenant_id, account_no); sessions reference it with a
-- composite key, ON DELETE CASCADE.  Tenants reuse account numbers.
CREATE TABLE accounts (
    tenant_id INTEGER NOT NULL,
    account_no INTEGER NOT NULL,
    closed_at TIMESTAMP,
    PRIMARY KEY (tenant_id, account_no)
);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    account_no INTEGER NOT NULL,
    flagged INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT fk_sessions_account FOREIGN KEY (tenant_id, account_no)
        REFERENCES accounts (tenant_id, account_no) ON DELETE CASCADE
);
INSERT INTO accounts VALUES
    (1, 1, '2024-01-01 00:00:00'),
    (1, 2, '2024-01-02 00:00:00'),
    (1, 3, '2024-01-03 00:00:00'),
    (2, 1, '2026-03-01 00:00:00'),
    (2, 2, '2024-01-05 00:00:00'),
    (3, 1, NULL);
INSERT INTO sessions VALUES
    (1, 1, 1, 0),
    (2, 1, 1, 0),
    (3, 1, 2, 1),
    (4, 1, 2, 0),
    (5, 2, 1, 0),
    (6, 2, 2, 0),
    (7, 3, 1, 0);
