//! The checks every section's `validate()` is made of, so each error names
//! its key the same way.

use std::ops::RangeInclusive;

use super::ConfigError;

/// One `check_range` per listed field, each keyed `section.field`, so a
/// key's name in an error cannot drift from the field it checks.
macro_rules! check_fields {
    ($section:literal, $s:expr, { $($field:ident: $range:expr),+ $(,)? }) => {
        $(
            $crate::config::check::check_range(
                concat!($section, ".", stringify!($field)),
                $s.$field,
                $range,
            )?;
        )+
    };
}
pub(crate) use check_fields;

/// `check_urls` over the listed fields, each keyed `section.field`.
macro_rules! check_url_fields {
    ($section:literal, $s:expr, [$($field:ident),+ $(,)?]) => {
        $crate::config::check::check_urls(&[
            $((concat!($section, ".", stringify!($field)), &$s.$field)),+
        ])
    };
}
pub(crate) use check_url_fields;

pub const DAY_SECS: u64 = 86_400;
pub const HOUR_MS: u64 = 3_600_000;

/// `value` must lie in `range`; the error names the key and the range.
pub fn check_range<T>(key: &str, value: T, range: RangeInclusive<T>) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if range.contains(&value) {
        return Ok(());
    }
    Err(ConfigError::new(
        key,
        format!(
            "must be between {} and {}, got {value}",
            range.start(),
            range.end()
        ),
    ))
}

/// The first key's value must not exceed the second's.
pub fn check_order<T>(low: (&str, T), high: (&str, T)) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if low.1 <= high.1 {
        return Ok(());
    }
    Err(ConfigError::new(
        low.0,
        format!("must not exceed {} ({} > {})", high.0, low.1, high.1),
    ))
}

/// Each `(key, url)` must be an http(s) URL.
pub fn check_urls(urls: &[(&str, &str)]) -> Result<(), ConfigError> {
    for (key, url) in urls {
        match reqwest::Url::parse(url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            _ => {
                return Err(ConfigError::new(
                    *key,
                    format!("'{url}' is not an http(s) URL"),
                ));
            }
        }
    }
    Ok(())
}
