-- deep_chain on sqlite: tables and rows, as of 2026-03-15T12:00:00Z.
-- Four levels below staff, every key RESTRICT: removing a leaver reaches 18 rows.
CREATE TABLE staff (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, left_at DATETIME);
CREATE TABLE stores (id INTEGER PRIMARY KEY, manager_id INTEGER NOT NULL,
    CONSTRAINT fk_stores_staff FOREIGN KEY (manager_id) REFERENCES staff (id) ON DELETE RESTRICT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, store_id INTEGER NOT NULL,
    CONSTRAINT fk_orders_stores FOREIGN KEY (store_id) REFERENCES stores (id) ON DELETE RESTRICT);
CREATE TABLE order_lines (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL,
    CONSTRAINT fk_lines_orders FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE RESTRICT);
CREATE TABLE line_notes (id INTEGER PRIMARY KEY, line_id INTEGER NOT NULL,
    CONSTRAINT fk_notes_lines FOREIGN KEY (line_id) REFERENCES order_lines (id) ON DELETE RESTRICT);
INSERT INTO staff VALUES (1, 'old one', '2024-01-10 09:00:00'), (2, 'old two', '2024-02-10 09:00:00'),
    (3, 'old three', '2024-03-10 09:00:00'), (4, 'young', '2026-02-01 09:00:00'), (5, 'employed', NULL);
INSERT INTO stores VALUES (1, 1), (2, 1), (3, 2), (4, 4);
INSERT INTO orders VALUES (1, 1), (2, 1), (3, 2), (4, 3), (5, 3), (6, 4);
INSERT INTO order_lines VALUES (1, 1), (2, 1), (3, 2), (4, 3), (5, 4), (6, 5), (7, 6), (8, 6);
INSERT INTO line_notes VALUES (1, 1), (2, 3), (3, 4), (4, 5), (5, 7);
