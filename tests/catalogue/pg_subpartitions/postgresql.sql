-- pg_subpartitions on postgresql: tables and rows, as of 2026-03-15T12:00:00Z.
-- events is partitioned by year, each year sub-partitioned by region; the cascading key to
-- accounts is declared on the parent (PostgreSQL clones it onto every partition).
CREATE TABLE accounts (id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL, closed_at TIMESTAMP);
CREATE TABLE events (
    id INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    region VARCHAR(8) NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id, occurred_at, region),
    CONSTRAINT events_account FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
) PARTITION BY RANGE (occurred_at);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')
    PARTITION BY LIST (region);
CREATE TABLE events_2023_eu PARTITION OF events_2023 FOR VALUES IN ('eu');
CREATE TABLE events_2023_other PARTITION OF events_2023 DEFAULT;
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
    PARTITION BY LIST (region);
CREATE TABLE events_2024_eu PARTITION OF events_2024 FOR VALUES IN ('eu');
CREATE TABLE events_2024_us PARTITION OF events_2024 FOR VALUES IN ('us');
CREATE TABLE events_later PARTITION OF events FOR VALUES FROM ('2025-01-01') TO (MAXVALUE)
    PARTITION BY LIST (region);
CREATE TABLE events_later_all PARTITION OF events_later DEFAULT;
INSERT INTO accounts VALUES
    (1, 'a1@example.com', '2024-01-01 00:00:00'),
    (2, 'a2@example.com', '2024-01-02 00:00:00'),
    (3, 'a3@example.com', '2024-01-03 00:00:00'),
    (4, 'a4@example.com', '2024-01-04 00:00:00'),
    (5, 'a5@example.com', '2024-01-05 00:00:00'),
    (6, 'a6@example.com', '2026-03-01 00:00:00');
INSERT INTO events VALUES
    (1, 1, 'eu', '2023-02-01 08:00:00'),
    (2, 1, 'us', '2023-03-01 08:00:00'),
    (3, 2, 'eu', '2025-01-15 08:00:00'),
    (4, 3, 'us', '2024-06-01 08:00:00'),
    (5, 4, 'eu', '2023-02-02 08:00:00'),
    (6, 4, 'eu', '2024-12-01 08:00:00'),
    (7, 6, 'us', '2023-04-01 08:00:00');
