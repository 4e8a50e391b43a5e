-- A device keeps the label of the setup code it paired with (it was on the
-- request only), so that the operator's listing can say whose device it is.
-- Devices paired before get their request's label, where it is still there.
ALTER TABLE devices ADD COLUMN label TEXT NOT NULL DEFAULT '';
UPDATE devices SET label = COALESCE((SELECT r.label FROM device_requests r WHERE r.id = devices.request_id), '');
