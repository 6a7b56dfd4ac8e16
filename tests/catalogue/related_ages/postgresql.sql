-- related_ages on postgresql: tables and rows, as of 2026-03-15T12:00:00Z.
-- A customer is as old as its newest invoice; a shop as its newest shipped order line, two
-- foreign keys away (order_lines -> orders -> shops).  Every key cascades.
-- Customer 8's second invoice is young (SQLite's copy holds a day-first date there).
CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL);
CREATE TABLE invoices (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER,
    issued_at TIMESTAMP,
    CONSTRAINT fk_invoices_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
        ON DELETE CASCADE
);
CREATE TABLE shops (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    shop_id INTEGER NOT NULL,
    CONSTRAINT fk_orders_shop FOREIGN KEY (shop_id) REFERENCES shops (id) ON DELETE CASCADE
);
CREATE TABLE order_lines (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    shipped_on DATE,
    CONSTRAINT fk_lines_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE
);
INSERT INTO customers VALUES
    (1, 'old invoices'), (2, 'one young invoice'), (3, 'no invoices'), (4, 'an undated invoice'),
    (5, 'newest exactly at the cutoff'), (6, 'newest a second after it'), (7, 'held'),
    (8, 'an old and an odd invoice');
INSERT INTO invoices VALUES
    (11, 1, '2023-01-01 10:00:00'), (12, 1, '2024-01-01 10:00:00'),
    (21, 2, '2023-01-01 10:00:00'), (22, 2, '2025-06-01 10:00:00'),
    (41, 4, '2023-01-01 10:00:00'), (42, 4, NULL),
    (51, 5, '2024-03-15 12:00:00'), (52, 5, '2024-03-15 12:00:00'),
    (61, 6, '2024-03-15 12:00:01'),
    (71, 7, '2020-01-01 10:00:00'),
    (81, 8, '2020-01-01 10:00:00'), (82, 8, '2026-03-01 00:00:00'),
    (91, NULL, '2020-01-01 10:00:00');
INSERT INTO shops VALUES
    (1, 'shipped long ago'), (2, 'shipped lately'), (3, 'no orders'), (4, 'an order, no lines'),
    (5, 'last shipped on the cutoff day'), (6, 'a line not shipped');
INSERT INTO orders VALUES (101, 1), (102, 1), (201, 2), (401, 4), (501, 5), (601, 6);
INSERT INTO order_lines VALUES
    (1011, 101, '2023-01-01'), (1021, 102, '2023-06-01'),
    (2011, 201, '2023-01-01'), (2012, 201, '2025-01-01'),
    (5011, 501, '2024-03-15'),
    (6011, 601, '2020-01-01'), (6012, 601, NULL);
