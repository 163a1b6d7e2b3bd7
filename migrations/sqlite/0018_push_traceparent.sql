-- A push left for the delivery job keeps the trace of the request that caused it (W3C
-- `traceparent`, recorded traces only), so its later attempts belong to that trace.
ALTER TABLE notifications ADD COLUMN push_traceparent TEXT;
