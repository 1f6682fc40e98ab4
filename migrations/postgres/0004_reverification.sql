-- When staff last asked the holder to verify their identity again. Google learns it through a
-- notification; getCredentialStatus then overlays userActionRequired until a reverification
-- proofing is accepted.
alter table credentials add column reverification_requested_at timestamptz;
