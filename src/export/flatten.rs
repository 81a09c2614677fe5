//! Flattening of nested insights rows into dotted CSV columns.

use serde_json::{Number, Value};

use super::Row;

/// Flattens nested values into dotted columns: objects recurse
/// (`post_reactions_by_type_total` `{"like":13}` → `post_reactions_by_type_total.like` = 13);
/// Meta action lists `[{"action_type":"link_click","value":"9"}, ...]` →
/// `actions.link_click` = 9 (value parsed to a number when it is a numeric
/// string; other fields of an entry, such as `1d_click`, become
/// `actions.link_click.1d_click`); other arrays → their JSON text.
/// Empty objects and empty arrays produce no column.
pub fn flatten(row: &Row) -> Vec<(String, Value)> {
    let mut out = Vec::with_capacity(row.len() + 8);
    for (key, value) in row {
        flatten_into(key.clone(), value, &mut out);
    }
    out
}

fn flatten_into(name: String, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                flatten_into(format!("{name}.{key}"), inner, out);
            }
        }
        Value::Array(items) if items.is_empty() => {}
        Value::Array(items) if is_action_list(items) => {
            for item in items.iter().filter_map(Value::as_object) {
                let Some(action) = item.get("action_type").and_then(Value::as_str) else {
                    continue;
                };
                for (key, inner) in item {
                    let column = match key.as_str() {
                        "action_type" => continue,
                        "value" => format!("{name}.{action}"),
                        other => format!("{name}.{action}.{other}"),
                    };
                    flatten_into(column, &numeric(inner), out);
                }
            }
        }
        Value::Array(_) => out.push((name, Value::String(value.to_string()))),
        scalar => out.push((name, scalar.clone())),
    }
}

/// Meta's shape for `actions`, `action_values`, `video_p25_watched_actions`…:
/// every entry an object naming its `action_type`.
fn is_action_list(items: &[Value]) -> bool {
    items.iter().all(|item| {
        item.get("action_type")
            .is_some_and(|action| action.is_string())
    })
}

/// Meta sends numbers as strings (`"9"`, `"12.5"`); a string that is exactly a
/// JSON number becomes that number, anything else (`"007"`, `"n/a"`) stays.
fn numeric(value: &Value) -> Value {
    match value {
        Value::String(text) => text
            .parse::<Number>()
            .map(Value::Number)
            .unwrap_or_else(|_| value.clone()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(value: Value) -> Row {
        value.as_object().unwrap().clone()
    }

    fn flat(value: Value) -> Vec<(String, Value)> {
        flatten(&row(value))
    }

    #[test]
    fn nested_objects_become_dotted_columns_in_order() {
        let got = flat(json!({
            "post_id": "1_2",
            "post_reactions_by_type_total": {"like": 13, "love": 2, "extra": {"deep": true}},
            "reach": 100
        }));
        assert_eq!(
            got,
            vec![
                ("post_id".into(), json!("1_2")),
                ("post_reactions_by_type_total.like".into(), json!(13)),
                ("post_reactions_by_type_total.love".into(), json!(2)),
                (
                    "post_reactions_by_type_total.extra.deep".into(),
                    json!(true)
                ),
                ("reach".into(), json!(100)),
            ]
        );
    }

    #[test]
    fn action_lists_become_one_column_per_action_type_with_numbers() {
        let got = flat(json!({
            "actions": [
                {"action_type": "link_click", "value": "9"},
                {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "2.50", "1d_click": "1"},
                {"action_type": "post_engagement", "value": "n/a"},
                {"action_type": "video_view", "value": 4}
            ]
        }));
        assert_eq!(
            got,
            vec![
                ("actions.link_click".into(), json!(9)),
                (
                    "actions.offsite_conversion.fb_pixel_purchase".into(),
                    json!(2.5)
                ),
                (
                    "actions.offsite_conversion.fb_pixel_purchase.1d_click".into(),
                    json!(1)
                ),
                ("actions.post_engagement".into(), json!("n/a")),
                ("actions.video_view".into(), json!(4)),
            ]
        );
    }

    #[test]
    fn other_arrays_become_their_json_text_and_empty_ones_vanish() {
        let got = flat(json!({
            "tags": ["a", "b"],
            "mixed": [{"action_type": "x", "value": "1"}, 3],
            "none": [],
            "empty": {}
        }));
        assert_eq!(
            got,
            vec![
                ("tags".into(), json!(r#"["a","b"]"#)),
                (
                    "mixed".into(),
                    json!(r#"[{"action_type":"x","value":"1"},3]"#)
                ),
            ]
        );
    }

    #[test]
    fn numeric_strings_are_parsed_only_when_they_are_exact_numbers() {
        assert_eq!(numeric(&json!("9")), json!(9));
        assert_eq!(numeric(&json!("-3.25")), json!(-3.25));
        assert_eq!(numeric(&json!("007")), json!("007"));
        assert_eq!(numeric(&json!(" 9")), json!(" 9"));
        assert_eq!(numeric(&json!("")), json!(""));
    }

    #[test]
    fn vietnamese_text_passes_through_untouched() {
        let text = "Xin chào, thế giới — “ngoặc kép”, dấu phẩy";
        let got = flat(json!({"message": text, "tỉnh": {"thành": "Hà Nội"}}));
        assert_eq!(
            got,
            vec![
                ("message".into(), json!(text)),
                ("tỉnh.thành".into(), json!("Hà Nội")),
            ]
        );
    }
}
