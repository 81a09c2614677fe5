//! Graph field expansion (wire-spec 6.4):
//! `id,reactions.summary(total_count).limit(0),insights.metric(a,b).period(lifetime)`
//! parsed into names with their `.modifier(args)` calls. Sub-field braces
//! (`attachments{media}`) are accepted and ignored.

/// One requested field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldSpec {
    pub name: String,
    /// `(modifier, argument)` in order, e.g. `("metric", "a,b")`.
    pub modifiers: Vec<(String, String)>,
}

impl FieldSpec {
    pub fn modifier(&self, name: &str) -> Option<&str> {
        self.modifiers
            .iter()
            .find(|(m, _)| m == name)
            .map(|(_, a)| a.as_str())
    }

    /// The response key: the `.as(alias)` alias or the name.
    pub fn key(&self) -> &str {
        self.modifier("as").unwrap_or(&self.name)
    }
}

/// Splits `fields` at top-level commas and parses each part.
pub(crate) fn parse_fields(fields: &str) -> Vec<FieldSpec> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for c in fields.chars() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(parse_one)
        .collect()
}

fn parse_one(text: &str) -> FieldSpec {
    // Drop `{…}` sub-field lists; they do not change what we answer.
    let mut plain = String::new();
    let mut braces = 0i32;
    for c in text.chars() {
        match c {
            '{' => braces += 1,
            '}' => braces -= 1,
            _ if braces == 0 => plain.push(c),
            _ => {}
        }
    }
    let (name, mut rest) = match plain.find('.') {
        Some(i) => (plain[..i].to_string(), &plain[i + 1..]),
        None => (plain.clone(), ""),
    };
    let mut modifiers = Vec::new();
    while !rest.is_empty() {
        let Some(open) = rest.find('(') else {
            break;
        };
        let Some(close) = rest[open..].find(')').map(|c| c + open) else {
            break;
        };
        let modifier = rest[..open].trim_start_matches('.').trim().to_string();
        modifiers.push((modifier, rest[open + 1..close].trim().to_string()));
        rest = &rest[close + 1..];
    }
    FieldSpec {
        name: name.trim().to_string(),
        modifiers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_modifiers_keep_their_commas() {
        let specs = parse_fields(
            "id,reactions.summary(total_count).limit(0),insights.metric(post_clicks,post_reactions_by_type_total).period(lifetime),attachments{media,url},reactions.type(LOVE).limit(0).summary(total_count).as(loves)",
        );
        let names: Vec<&str> = specs.iter().map(|s| s.key()).collect();
        assert_eq!(
            names,
            ["id", "reactions", "insights", "attachments", "loves"]
        );
        assert_eq!(
            specs[2].modifier("metric"),
            Some("post_clicks,post_reactions_by_type_total")
        );
        assert_eq!(specs[2].modifier("period"), Some("lifetime"));
        assert_eq!(specs[1].modifier("limit"), Some("0"));
        assert_eq!(specs[4].modifier("type"), Some("LOVE"));
    }
}
