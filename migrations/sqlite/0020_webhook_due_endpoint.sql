-- Deliveries go out concurrently, at most one at a time per endpoint (its messages stay in order
-- and a slow endpoint holds one slot only): a due message names its endpoint so that the claim
-- can skip endpoints that already have a delivery in flight.
ALTER TABLE webhook_due ADD COLUMN webhook_id TEXT;
UPDATE webhook_due SET webhook_id = (SELECT m.webhook_id FROM webhook_messages m WHERE m.id = webhook_due.message_id);
CREATE INDEX webhook_due_endpoint ON webhook_due(webhook_id, locked_until);
