//! Meta sends insight numbers as strings; callers want numbers. Conversions
//! and totals.

use serde_json::{Map, Number, Value};

/// `"14.35"` → 14.35, `"185"` → 185; anything else unchanged.
pub fn number(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            if let Ok(i) = s.parse::<i64>() {
                return Value::Number(i.into());
            }
            s.parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map_or_else(|| v.clone(), Value::Number)
        }
        other => other.clone(),
    }
}

/// Converts every metric of an ads insights row to numbers, including the
/// values inside `actions`-style lists. Ids, names and dates stay strings.
pub fn parse_ads_row(row: &Map<String, Value>) -> Map<String, Value> {
    row.iter()
        .map(|(k, v)| {
            let converted = if is_text_field(k) {
                v.clone()
            } else {
                match v {
                    Value::Array(items) => Value::Array(
                        items
                            .iter()
                            .map(|item| match item {
                                Value::Object(o) => Value::Object(
                                    o.iter()
                                        .map(|(ik, iv)| {
                                            let iv = if ik == "action_type" {
                                                iv.clone()
                                            } else {
                                                number(iv)
                                            };
                                            (ik.clone(), iv)
                                        })
                                        .collect(),
                                ),
                                other => other.clone(),
                            })
                            .collect(),
                    ),
                    other => number(other),
                }
            };
            (k.clone(), converted)
        })
        .collect()
}

fn is_text_field(key: &str) -> bool {
    key.ends_with("_id")
        || key.ends_with("_name")
        || matches!(
            key,
            "date_start"
                | "date_stop"
                | "age"
                | "gender"
                | "country"
                | "region"
                | "publisher_platform"
                | "platform_position"
                | "device_platform"
                | "impression_device"
        )
}

pub fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.parse().ok())
}

/// Adds `value` into `totals[key]` (numbers, and objects of numbers by key).
pub fn accumulate(totals: &mut Map<String, Value>, key: &str, value: &Value) {
    match value {
        Value::Object(o) => {
            let entry = totals
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(t) = entry {
                for (k, v) in o {
                    accumulate(t, k, v);
                }
            }
        }
        v => {
            if let Some(x) = as_f64(v) {
                let sum = totals.get(key).and_then(as_f64).unwrap_or(0.0) + x;
                totals.insert(key.to_string(), rounded(sum));
            }
        }
    }
}

/// A number without float noise: integers stay integers, others keep 6 decimals.
pub fn rounded(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::Number((x as i64).into())
    } else {
        Number::from_f64((x * 1e6).round() / 1e6).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_become_numbers_but_ids_stay_text() {
        let row = json!({"campaign_id": "238", "impressions": "185", "spend": "14.35",
            "actions": [{"action_type": "link_click", "value": "9"}], "date_start": "2024-06-01"});
        let parsed = parse_ads_row(row.as_object().unwrap());
        assert_eq!(parsed["campaign_id"], "238");
        assert_eq!(parsed["impressions"], 185);
        assert_eq!(parsed["spend"], 14.35);
        assert_eq!(parsed["actions"][0]["value"], 9);
        assert_eq!(parsed["date_start"], "2024-06-01");
    }

    #[test]
    fn totals_add_numbers_and_objects() {
        let mut t = Map::new();
        accumulate(&mut t, "spend", &json!(0.1));
        accumulate(&mut t, "spend", &json!(0.2));
        accumulate(&mut t, "r", &json!({"like": 1}));
        accumulate(&mut t, "r", &json!({"like": 2, "love": 1}));
        assert_eq!(t["spend"], 0.3);
        assert_eq!(t["r"], json!({"like": 3, "love": 1}));
    }
}
