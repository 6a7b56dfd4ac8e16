-- fk_cycle on mariadb: tables and rows, as of 2026-03-15T12:00:00Z.
-- people.home_address_id -> addresses (SET NULL) and addresses.owner_id -> people (RESTRICT).
CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    home_address_id INTEGER,
    closed_at DATETIME
);
CREATE TABLE addresses (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER,
    street VARCHAR(100) NOT NULL,
    moved_out_at DATETIME,
    CONSTRAINT fk_addresses_owner FOREIGN KEY (owner_id) REFERENCES people (id)
        ON DELETE RESTRICT
);
ALTER TABLE people ADD CONSTRAINT fk_people_home FOREIGN KEY (home_address_id)
    REFERENCES addresses (id) ON DELETE SET NULL;
INSERT INTO people VALUES
    (1, 'moved away', NULL, '2024-01-10 00:00:00'),
    (2, 'customer', NULL, NULL),
    (3, 'litigant', NULL, '2024-02-10 00:00:00'),
    (4, 'closed with a young address', NULL, '2024-03-10 00:00:00'),
    (5, 'recently closed', NULL, '2026-02-10 00:00:00');
INSERT INTO addresses VALUES
    (1, 1, 'street one', '2024-01-10 00:00:00'),
    (2, 2, 'street two', '2024-05-10 00:00:00'),
    (3, 2, 'street three', NULL),
    (4, 3, 'street four', '2024-02-10 00:00:00'),
    (5, 4, 'street five', '2026-01-10 00:00:00'),
    (6, 5, 'street six', NULL);
UPDATE people SET home_address_id = 1 WHERE id = 1;
UPDATE people SET home_address_id = 3 WHERE id = 2;
UPDATE people SET home_address_id = 4 WHERE id = 3;
UPDATE people SET home_address_id = 6 WHERE id = 5;
