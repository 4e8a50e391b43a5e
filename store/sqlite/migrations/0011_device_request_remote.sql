-- A device request keeps the address the device connected from, so the
-- operator deciding it can tell a phone on the home network from a stranger.
ALTER TABLE device_requests ADD COLUMN remote TEXT NOT NULL DEFAULT '';
