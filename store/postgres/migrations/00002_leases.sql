-- +goose Up
-- Leases: work that must run on one replica at a time, such as garbage
-- collection, is done by whoever holds its lease; a holder that stops
-- renewing loses it when it expires.
CREATE TABLE leases (
    name       TEXT   PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
