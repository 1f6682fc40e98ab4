-- Postgres's 0015 wakes dispatchers in other processes when jobs are queued (LISTEN/NOTIFY).
-- SQLite has no such channel, and its dispatchers poll (outbox.poll_interval_ms): nothing to do
-- here but keep the two stores' migrations numbered alike.
select 1;
