-- How fast a bulk update changes records, so that a large change does not crowd out the Wallet
-- API (records per second; 0: as fast as the store allows, which is also what a bulk update
-- started before this column existed gets).
alter table bulk_updates add column records_per_sec integer not null default 0;
