-- What the Wallet API needs of a device copy: the version whose ProofOfProvisioning was accepted
-- (the copy is active while that is the record's current version), that proof's SHA-256 (auth
-- keys' ProofOfBinding must carry it), and when the wallet deleted the copy.
alter table wallet_credentials add column proven_version_id text references credential_versions (credential_version_id);
alter table wallet_credentials add column pop_sha256 blob;
alter table wallet_credentials add column deleted_at text;
create index wallet_credentials_device_idx on wallet_credentials (device_reference_id);
