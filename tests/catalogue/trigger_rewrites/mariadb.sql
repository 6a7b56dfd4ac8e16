-- trigger_rewrites on mariadb: tables and rows, as of 2026-03-15T12:00:00Z.
-- A BEFORE UPDATE trigger sets last_update to now; deleting a ticket writes into ticket_log.
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    email VARCHAR(200) NOT NULL UNIQUE,
    name VARCHAR(100) NOT NULL,
    closed_at DATETIME,
    last_update DATETIME
);
CREATE TABLE tickets (id INTEGER PRIMARY KEY, customer_ref INTEGER, closed_at DATETIME);
CREATE TABLE ticket_log (
    id INTEGER AUTO_INCREMENT PRIMARY KEY,
    ticket_id INTEGER NOT NULL,
    logged_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TRIGGER customers_touch BEFORE UPDATE ON customers
    FOR EACH ROW SET NEW.last_update = NOW();
CREATE TRIGGER tickets_deleted AFTER DELETE ON tickets
    FOR EACH ROW INSERT INTO ticket_log (ticket_id) VALUES (OLD.id);
INSERT INTO customers (id, email, name, closed_at, last_update) VALUES
    (1, 'ann@example.com', 'Ann', '2024-01-01 00:00:00', '2024-01-01 00:00:00'),
    (2, 'bob@example.com', 'Bob', '2024-02-01 00:00:00', '2024-02-01 00:00:00'),
    (3, 'cy@example.com', 'Cy', '2024-03-01 00:00:00', '2024-03-01 00:00:00'),
    (4, 'di@example.com', 'Di', '2026-03-01 00:00:00', '2026-03-01 00:00:00'),
    (5, 'ed@example.com', 'Ed', NULL, '2024-05-01 00:00:00');
INSERT INTO tickets (id, customer_ref, closed_at) VALUES
    (1, 1, '2024-01-10 00:00:00'),
    (2, 2, '2024-02-10 00:00:00'),
    (3, 4, '2026-03-10 00:00:00'),
    (4, 5, NULL);
