-- The outbox's indexes for a fast queue. Folding pending jobs into a claimed one looks them up by
-- coalescing key among pending jobs only: a partial index keeps just those (a delivered job drops
-- out instead of adding an entry), and is the plan the database picks whatever its statistics
-- say about how many jobs are pending (with (state, next_attempt_at) to choose from, a planner
-- that believed few were pending scanned all of them for every claim). Claims use
-- outbox_claim_idx; nothing else needs (state, next_attempt_at).
drop index outbox_coalesce_idx;
drop index outbox_due_idx;
create index outbox_pending_coalesce_idx on outbox (coalesce_key) where state = 'pending';
