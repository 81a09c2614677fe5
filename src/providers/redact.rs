//! Strips secrets from URLs and texts before they are logged or returned.

/// Query parameters whose values are secrets.
const SECRET_PARAMS: &[&str] = &[
    "access_token",
    "appsecret_proof",
    "client_secret",
    "fb_exchange_token",
    "input_token",
    "code",
    "refresh_token",
    "app_secret",
    "auth_code",
];

/// The URL with the values of secret query parameters replaced by `[redacted]`.
pub fn redact_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k) => format!("{k}=[redacted]"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", parts.join("&"))
}

/// `text` with every occurrence of each of `secrets` replaced.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 8)
        .fold(text.to_string(), |acc, s| acc.replace(s, "[redacted]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_parameters_are_redacted_and_others_kept() {
        let url = "https://g/v25.0/me/accounts?limit=25&access_token=EAABxyz&appsecret_proof=abc&after=QVF";
        assert_eq!(
            redact_url(url),
            "https://g/v25.0/me/accounts?limit=25&access_token=[redacted]&appsecret_proof=[redacted]&after=QVF"
        );
        assert_eq!(redact_url("https://g/x"), "https://g/x");
    }

    #[test]
    fn scrub_removes_known_secrets() {
        assert_eq!(
            scrub("bad token EAAB12345678 here", &["EAAB12345678"]),
            "bad token [redacted] here"
        );
    }
}
