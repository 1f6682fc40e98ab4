//! A relying party checking an MSO's `status` member against the issuer's Token Status List
//! (draft-ietf-oauth-status-list; docs/STATUS_LIST.md): fetch the token at `uri`, check its
//! signer certificate against the IACA and its ES256 signature, its `typ`, `sub`, `exp`, then
//! read the bit at `idx`. Written from the draft with `coset`, `ciborium`, `flate2` and
//! `x509-cert`, apart from Brevet's encoder.

use std::io::Read;
use std::time::{Duration, SystemTime};

use ciborium::Value;
use coset::{CborSerializable, CoseSign1, Label};
use x509_cert::der::Decode;
use x509_cert::Certificate;

use super::identity_credential::open_sign1;
use super::x509;

/// What the list says about one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStatus {
    /// 0x00.
    Valid,
    /// 0x01.
    Invalid,
    /// Any other value (suspended, application specific).
    Other(u8),
}

/// The entry an MSO names: `status.status_list.{idx, uri}`.
pub fn reference(status: &Value) -> Result<(u64, String), String> {
    let get = |map: &Value, key: &str| -> Option<Value> {
        let Value::Map(entries) = map else {
            return None;
        };
        entries
            .iter()
            .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
            .map(|(_, v)| v.clone())
    };
    let list = get(status, "status_list").ok_or("status has no status_list")?;
    let idx = match get(&list, "idx") {
        Some(Value::Integer(i)) => u64::try_from(i).map_err(|_| "idx is negative")?,
        _ => return Err("status_list.idx is not an unsigned integer".into()),
    };
    let uri = match get(&list, "uri") {
        Some(Value::Text(uri)) => uri,
        _ => return Err("status_list.uri is not text".into()),
    };
    Ok((idx, uri))
}

fn claim(claims: &[(Value, Value)], key: i64) -> Option<&Value> {
    claims
        .iter()
        .find(|(k, _)| matches!(k, Value::Integer(i) if i128::from(*i) == i128::from(key)))
        .map(|(_, v)| v)
}

/// Reads a Status List Token: checks it and returns the status of entry `idx`.
pub fn read_token(
    token: &[u8],
    uri: &str,
    idx: u64,
    iaca: &[Certificate],
    now: SystemTime,
) -> Result<EntryStatus, String> {
    // The draft forbids the CWT and COSE tags on the token.
    let sign1 =
        CoseSign1::from_slice(token).map_err(|_| "the token is not an untagged COSE_Sign1")?;
    let typ = sign1
        .protected
        .header
        .rest
        .iter()
        .find(|(label, _)| *label == Label::Int(16))
        .map(|(_, v)| v);
    if typ != Some(&Value::Text("application/statuslist+cwt".into())) {
        return Err("the token's protected typ is not application/statuslist+cwt".into());
    }
    let signer_der = match sign1
        .unprotected
        .rest
        .iter()
        .chain(&sign1.protected.header.rest)
        .find(|(label, _)| *label == Label::Int(33))
        .map(|(_, v)| v)
    {
        Some(Value::Bytes(der)) => der.clone(),
        Some(Value::Array(items)) => match items.first() {
            Some(Value::Bytes(der)) => der.clone(),
            _ => return Err("x5chain is empty".into()),
        },
        _ => return Err("the token has no x5chain".into()),
    };
    let signer =
        Certificate::from_der(&signer_der).map_err(|e| format!("signer certificate: {e}"))?;
    let issuer = iaca
        .iter()
        .find(|ca| ca.tbs_certificate.subject == signer.tbs_certificate.issuer)
        .ok_or("the status-list signer was not issued by the IACA")?;
    if !x509::signed_by(&signer, &x509::p256_key(issuer)?) {
        return Err("the signer certificate's signature does not verify with the IACA".into());
    }
    if !x509::valid_at(&signer, now) {
        return Err("the signer certificate is not valid now".into());
    }
    let payload =
        open_sign1(token, &x509::p256_key(&signer)?).map_err(|e| format!("token: {e}"))?;
    let Value::Map(claims) =
        ciborium::from_reader(payload.as_slice()).map_err(|e| format!("claims: {e}"))?
    else {
        return Err("the claims are not a map".into());
    };
    if claim(&claims, 2) != Some(&Value::Text(uri.into())) {
        return Err(format!("the token's sub is not {uri}"));
    }
    let seconds = |key| match claim(&claims, key) {
        Some(Value::Integer(i)) => i64::try_from(*i).ok(),
        _ => None,
    };
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (Some(_iat), Some(exp)) = (seconds(6), seconds(4)) else {
        return Err("the token lacks iat or exp".into());
    };
    if exp <= now_secs {
        return Err("the token has expired".into());
    }
    let Some(Value::Map(list)) = claim(&claims, 65533) else {
        return Err("the token has no status_list claim".into());
    };
    let field = |key: &str| {
        list.iter()
            .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
            .map(|(_, v)| v)
    };
    let bits = match field("bits") {
        Some(Value::Integer(b)) => u8::try_from(*b).map_err(|_| "bits out of range")?,
        _ => return Err("status_list.bits is missing".into()),
    };
    if ![1, 2, 4, 8].contains(&bits) {
        return Err(format!("status_list.bits is {bits}"));
    }
    let Some(Value::Bytes(lst)) = field("lst") else {
        return Err("status_list.lst is not bytes".into());
    };
    let mut bytes = Vec::new();
    flate2::read::ZlibDecoder::new(lst.as_slice())
        .take(64 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("lst does not inflate: {e}"))?;
    let per_byte = u64::from(8 / bits);
    let byte = usize::try_from(idx / per_byte)
        .ok()
        .and_then(|i| bytes.get(i))
        .ok_or_else(|| format!("idx {idx} is past the end of the list"))?;
    let shift = (idx % per_byte) * u64::from(bits);
    let mask = ((1u16 << bits) - 1) as u8;
    Ok(match (byte >> shift) & mask {
        0 => EntryStatus::Valid,
        1 => EntryStatus::Invalid,
        other => EntryStatus::Other(other),
    })
}

/// Fetches the token at `uri` (waiting out a list that is still being published) and reads
/// entry `idx`.
pub async fn check(
    http: &reqwest::Client,
    uri: &str,
    idx: u64,
    iaca: &[Certificate],
) -> Result<EntryStatus, String> {
    for _ in 0..20 {
        let response = http
            .get(uri)
            .header("accept", "application/statuslist+cwt")
            .send()
            .await
            .map_err(|e| format!("GET {uri}: {e}"))?;
        if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        if !response.status().is_success() {
            return Err(format!("GET {uri}: {}", response.status()));
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if content_type != "application/statuslist+cwt" {
            return Err(format!("GET {uri}: content type {content_type:?}"));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("GET {uri}: {e}"))?;
        return read_token(&body, uri, idx, iaca, SystemTime::now());
    }
    Err(format!("GET {uri}: still not published after 10 s"))
}
