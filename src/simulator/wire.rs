//! Small wire helpers shared by the simulator: random token strings,
//! `appsecret_proof`, and form/query encoding without extra crates.

use hmac::{Hmac, Mac};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::Sha256;

/// `hex_lower(HMAC_SHA256(key = app_secret, msg = access_token))`, the
/// `appsecret_proof` Graph expects next to every access token.
pub fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    hex::encode(mac(app_secret, access_token).finalize().into_bytes())
}

fn mac(app_secret: &str, msg: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("HMAC takes any key size");
    mac.update(msg.as_bytes());
    mac
}

/// Checks `proof` in constant time; with `appsecret_time` the message is
/// `access_token|time`, as documented for Workplace.
pub(crate) fn proof_matches(
    app_secret: &str,
    access_token: &str,
    proof: &str,
    time: Option<&str>,
) -> bool {
    let Ok(bytes) = hex::decode(proof) else {
        return false;
    };
    let msg = match time {
        Some(t) => format!("{access_token}|{t}"),
        None => access_token.to_string(),
    };
    mac(app_secret, &msg).verify_slice(&bytes).is_ok()
}

/// `len` random ASCII letters and digits.
pub(crate) fn random_alnum(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A Meta-looking trace id for error bodies and the `x-fb-trace-id` header.
pub(crate) fn trace_id() -> String {
    format!("A{}", random_alnum(22))
}

/// Decodes `a=1&b=x%20y` (also `+` as space) into pairs, keeping order.
pub(crate) fn parse_form(input: &str) -> Vec<(String, String)> {
    input
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((k, v)) => (decode_component(k), decode_component(v)),
            None => (decode_component(part), String::new()),
        })
        .collect()
}

fn decode_component(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but the RFC 3986 unreserved characters.
pub(crate) fn encode_component(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for b in input.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_round_trips_reserved_characters() {
        let value = "a b&c=d/é%";
        let encoded = format!("k={}&flag", encode_component(value));
        let pairs = parse_form(&encoded);
        assert_eq!(pairs[0], ("k".to_string(), value.to_string()));
        assert_eq!(pairs[1], ("flag".to_string(), String::new()));
        assert_eq!(parse_form("x=1+2%2")[0].1, "1 2%2");
    }

    #[test]
    fn proof_verifies_with_and_without_time() {
        let proof = appsecret_proof("s", "tok");
        assert!(proof_matches("s", "tok", &proof, None));
        assert!(!proof_matches("s", "tok2", &proof, None));
        let timed = appsecret_proof("s", "tok|123");
        assert!(proof_matches("s", "tok", &timed, Some("123")));
    }
}
