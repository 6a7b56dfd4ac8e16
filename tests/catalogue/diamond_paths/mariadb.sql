-- diamond_paths on mariadb: tables and rows, as of 2026-03-15T12:00:00Z.
-- items are reached from accounts by two paths: via a_links (CASCADE, then CASCADE) and via
-- b_links (CASCADE, then SET NULL).
CREATE TABLE accounts (id INTEGER PRIMARY KEY, closed_at DATETIME);
CREATE TABLE a_links (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL,
    CONSTRAINT fk_a_account FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE);
CREATE TABLE b_links (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL,
    CONSTRAINT fk_b_account FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE);
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    a_id INTEGER,
    b_id INTEGER,
    flagged INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT fk_items_a FOREIGN KEY (a_id) REFERENCES a_links (id) ON DELETE CASCADE,
    CONSTRAINT fk_items_b FOREIGN KEY (b_id) REFERENCES b_links (id) ON DELETE SET NULL
);
INSERT INTO accounts VALUES (1, '2024-01-01 00:00:00'), (2, '2024-01-02 00:00:00'),
    (3, '2026-03-01 00:00:00'), (4, '2024-01-04 00:00:00');
INSERT INTO a_links VALUES (1, 1), (2, 3), (3, 2);
INSERT INTO b_links VALUES (1, 1), (2, 2), (3, 3);
INSERT INTO items VALUES
    (1, 1, 1, 0),
    (2, 1, NULL, 0),
    (3, 2, 1, 0),
    (4, 2, 3, 0),
    (5, 2, 2, 1),
    (6, 3, 3, 0);
