-- mixed_case_identifiers on mariadb: tables and rows, as of 2026-03-15T12:00:00Z.
-- Quoted mixed-case names: "CustomerOrders" ("OrderId", "CustomerName", "CreatedAt") and
-- "OrderItems" referencing it, ON DELETE CASCADE.  A lower-case customerorders_archive sits beside them.
CREATE TABLE `CustomerOrders` (
    `OrderId` INTEGER PRIMARY KEY,
    `CustomerName` VARCHAR(100) NOT NULL,
    `CreatedAt` DATETIME
);
CREATE TABLE `OrderItems` (
    `ItemId` INTEGER PRIMARY KEY,
    `OrderId` INTEGER NOT NULL,
    CONSTRAINT `FK_OrderItems_Order` FOREIGN KEY (`OrderId`)
        REFERENCES `CustomerOrders` (`OrderId`) ON DELETE CASCADE
);
CREATE TABLE customerorders_archive (id INTEGER PRIMARY KEY, created_at DATETIME);
INSERT INTO `CustomerOrders` VALUES
    (1, 'Acme', '2024-01-01 00:00:00'),
    (2, 'Held Corp', '2024-01-02 00:00:00'),
    (3, 'Acme', '2024-01-03 00:00:00'),
    (4, 'Acme', '2026-03-01 00:00:00');
INSERT INTO `OrderItems` VALUES (1, 1), (2, 1), (3, 2), (4, 3), (5, 4);
INSERT INTO customerorders_archive VALUES (1, '2020-01-01 00:00:00');
