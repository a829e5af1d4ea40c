//! Stripe's webhook signatures: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, each
//! `v1` an HMAC-SHA256 of `"{t}.{raw body}"` under an endpoint's signing secret. Any `v1` under
//! any configured secret matching, within the tolerance of now (either side), passes.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use base::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header Stripe would send for `body` signed with `secret` at `timestamp`.
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

fn refuse(why: &str) -> Error {
    Error::InvalidInput(format!("webhook signature: {why}"))
}

/// Checks `header` over the raw `body` against `secrets` at `now` (unix seconds).
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[&str],
    now: i64,
    tolerance_secs: u64,
) -> Result<()> {
    if header.len() > 4096 {
        return Err(refuse("the Stripe-Signature header is too long"));
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return Err(refuse("the Stripe-Signature header is not `t=…,v1=…`"));
        };
        match key {
            "t" => {
                let t = value
                    .parse::<i64>()
                    .map_err(|_| refuse("the timestamp `t` is not a number"))?;
                if timestamp.replace(t).is_some() {
                    return Err(refuse("two timestamps"));
                }
            }
            // a value that is not hex cannot match; other schemes (v0) are not ours to check
            "v1" => {
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| refuse("no timestamp `t`"))?;
    if signatures.is_empty() {
        return Err(refuse("no v1 signature"));
    }
    if now.abs_diff(timestamp) > tolerance_secs {
        return Err(refuse(&format!(
            "the timestamp is {} s from now, more than the {tolerance_secs} s allowed",
            now.abs_diff(timestamp)
        )));
    }
    let matches = secrets.iter().any(|secret| {
        signatures
            .iter()
            // `verify_slice` compares in constant time
            .any(|sig| mac(secret, timestamp, body).verify_slice(sig).is_ok())
    });
    if matches {
        Ok(())
    } else {
        Err(refuse(
            "no signature matches (wrong secret or a changed body)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;

    #[test]
    fn signed_bodies_pass_and_changed_ones_do_not() {
        let header = sign(BODY, "whsec_a", 1_000);
        assert!(verify(&header, BODY, &["whsec_a"], 1_000, 300).is_ok());
        // rotation: any configured secret, any v1
        assert!(verify(&header, BODY, &["whsec_b", "whsec_a"], 1_100, 300).is_ok());
        let two = format!("{header},v1={}", "00".repeat(32));
        assert!(verify(&two, BODY, &["whsec_a"], 1_000, 300).is_ok());
        let other = sign(BODY, "whsec_b", 1_000);
        let both = format!("{},{}", other, header.split_once(',').unwrap().1);
        assert!(verify(&both, BODY, &["whsec_a"], 1_000, 300).is_ok());

        let err = |h: &str, body: &[u8], now: i64| {
            verify(h, body, &["whsec_a"], now, 300)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&header, b"{\"id\":\"evt_2\"}", 1_000).contains("no signature matches"));
        assert!(err(&sign(BODY, "whsec_x", 1_000), BODY, 1_000).contains("no signature matches"));
        assert!(err(&header, BODY, 1_301).contains("301 s from now"));
        assert!(err(&header, BODY, 699).contains("301 s from now"));
        assert!(verify(&header, BODY, &["whsec_a"], 1_300, 300).is_ok());
        assert!(err("v1=abc", BODY, 1_000).contains("no timestamp"));
        assert!(err("t=1000", BODY, 1_000).contains("no v1"));
        assert!(err("t=abc,v1=00", BODY, 1_000).contains("not a number"));
        assert!(err("garbage", BODY, 1_000).contains("not `t=…,v1=…`"));
        assert!(err("t=1000,t=1000,v1=00", BODY, 1_000).contains("two timestamps"));
        assert!(err(&"t=1,".repeat(2000), BODY, 1_000).contains("too long"));
        // the timestamp is signed: moving it breaks the signature
        let moved = header.replacen("t=1000", "t=1001", 1);
        assert!(err(&moved, BODY, 1_000).contains("no signature matches"));
    }
}
