//! The GAQL subset the service sends to `googleAds:searchStream`, parsed and
//! run over one customer's campaigns: `SELECT … FROM campaign [WHERE …]
//! [ORDER BY …] [LIMIT n]`, answered as proto3-JSON rows.

use std::cmp::Ordering;

use chrono::{Datelike, Days, Months, NaiveDate};
use serde_json::{Map, Value, json};

use super::google::{Campaign, Customer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    CampaignId,
    CampaignName,
    CampaignStatus,
    Impressions,
    Clicks,
    CostMicros,
    Conversions,
    Ctr,
    Date,
}

/// Each field with its GAQL name and its JSON (lowerCamelCase) path.
const FIELDS: [(Field, &str, &str); 9] = [
    (Field::CampaignId, "campaign.id", "campaign.id"),
    (Field::CampaignName, "campaign.name", "campaign.name"),
    (Field::CampaignStatus, "campaign.status", "campaign.status"),
    (
        Field::Impressions,
        "metrics.impressions",
        "metrics.impressions",
    ),
    (Field::Clicks, "metrics.clicks", "metrics.clicks"),
    (
        Field::CostMicros,
        "metrics.cost_micros",
        "metrics.costMicros",
    ),
    (
        Field::Conversions,
        "metrics.conversions",
        "metrics.conversions",
    ),
    (Field::Ctr, "metrics.ctr", "metrics.ctr"),
    (Field::Date, "segments.date", "segments.date"),
];

const STATUSES: [&str; 5] = ["ENABLED", "PAUSED", "REMOVED", "UNKNOWN", "UNSPECIFIED"];

impl Field {
    fn parse(name: &str) -> Option<Self> {
        FIELDS.iter().find(|f| f.1 == name).map(|f| f.0)
    }

    fn gaql(self) -> &'static str {
        FIELDS.iter().find(|f| f.0 == self).map_or("", |f| f.1)
    }

    /// The `fieldMask` spelling.
    pub fn mask(self) -> &'static str {
        FIELDS.iter().find(|f| f.0 == self).map_or("", |f| f.2)
    }

    fn is_metric(self) -> bool {
        matches!(
            self,
            Self::Impressions | Self::Clicks | Self::CostMicros | Self::Conversions | Self::Ctr
        )
    }

    fn is_text(self) -> bool {
        matches!(self, Self::CampaignName | Self::CampaignStatus)
    }
}

/// A `queryError` for the 400 answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryError {
    pub code: &'static str,
    pub message: String,
}

fn error(code: &'static str, message: impl Into<String>) -> QueryError {
    QueryError {
        code,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Num(f64),
    Text(String),
}

/// A condition on a non-date field, checked on every result row.
#[derive(Debug, Clone)]
struct Filter {
    field: Field,
    op: Op,
    values: Vec<Lit>,
}

/// A parsed query.
#[derive(Debug)]
pub(crate) struct Query {
    pub fields: Vec<Field>,
    /// Inclusive date bounds from `segments.date` conditions.
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    filters: Vec<Filter>,
    order: Vec<(Field, bool)>,
    limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// Keywords, field names, enum constants and numbers.
    Word(String),
    Str(String),
    Punct(&'static str),
}

fn tokenize(query: &str) -> Result<Vec<Tok>, QueryError> {
    let chars: Vec<char> = query.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or_else(|| error("UNEXPECTED_END_OF_QUERY", "unterminated string"))?;
            toks.push(Tok::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_.-".contains(chars[i]))
            {
                i += 1;
            }
            toks.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let punct = match two.as_str() {
                ">=" => ">=",
                "<=" => "<=",
                "!=" => "!=",
                _ => match c {
                    ',' => ",",
                    '(' => "(",
                    ')' => ")",
                    '=' => "=",
                    '>' => ">",
                    '<' => "<",
                    _ => return Err(error("BAD_SYMBOL", format!("unexpected '{c}'"))),
                },
            };
            i += punct.len();
            toks.push(Tok::Punct(punct));
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Result<Tok, QueryError> {
        let tok = self
            .toks
            .get(self.pos)
            .cloned()
            .ok_or_else(|| error("UNEXPECTED_END_OF_QUERY", "the query ended early"))?;
        self.pos += 1;
        Ok(tok)
    }

    /// Consumes the keyword if it is next.
    fn keyword(&mut self, kw: &str) -> bool {
        let found = matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw));
        if found {
            self.pos += 1;
        }
        found
    }

    fn punct(&mut self, p: &'static str) -> bool {
        let found = self.peek() == Some(&Tok::Punct(p));
        if found {
            self.pos += 1;
        }
        found
    }

    fn field(&mut self) -> Result<Field, QueryError> {
        match self.next()? {
            Tok::Word(w) => Field::parse(&w)
                .ok_or_else(|| error("UNRECOGNIZED_FIELD", format!("unrecognized field '{w}'"))),
            other => Err(error(
                "UNEXPECTED_INPUT",
                format!("expected a field, got {other:?}"),
            )),
        }
    }

    fn literal(&mut self, field: Field) -> Result<Lit, QueryError> {
        match (self.next()?, field.is_text()) {
            (Tok::Str(s), true) => Ok(Lit::Text(s)),
            // Enum constants may be bare.
            (Tok::Word(w), true) if field == Field::CampaignStatus => Ok(Lit::Text(w)),
            (Tok::Word(w), false) => w
                .parse::<f64>()
                .map(Lit::Num)
                .map_err(|_| error("BAD_NUMBER", format!("'{w}' is not a number"))),
            (tok, _) => Err(error(
                "BAD_VALUE",
                format!("bad value {tok:?} for {}", field.gaql()),
            )),
        }
    }
}

/// Parses `query`; `today` resolves `DURING` ranges.
pub(crate) fn parse(query: &str, today: NaiveDate) -> Result<Query, QueryError> {
    let mut p = Parser {
        toks: tokenize(query)?,
        pos: 0,
    };
    if !p.keyword("SELECT") {
        return Err(error("EXPECTED_SELECT", "the query must start with SELECT"));
    }
    let mut fields = vec![p.field()?];
    while p.punct(",") {
        fields.push(p.field()?);
    }
    if !p.keyword("FROM") {
        return Err(error("EXPECTED_FROM", "missing FROM clause"));
    }
    match p.next()? {
        Tok::Word(w) if w == "campaign" => {}
        other => {
            return Err(error(
                "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE",
                format!("the simulator only serves FROM campaign, not {other:?}"),
            ));
        }
    }
    let mut query = Query {
        fields,
        from: None,
        to: None,
        filters: Vec::new(),
        order: Vec::new(),
        limit: None,
    };
    let mut dated = false;
    if p.keyword("WHERE") {
        loop {
            dated |= condition(&mut p, &mut query, today)?;
            if !p.keyword("AND") {
                break;
            }
        }
    }
    if p.keyword("ORDER") {
        if !p.keyword("BY") {
            return Err(error("EXPECTED_BY", "ORDER must be followed by BY"));
        }
        loop {
            let field = p.field()?;
            let desc = p.keyword("DESC");
            if !desc {
                p.keyword("ASC");
            }
            query.order.push((field, desc));
            if !p.punct(",") {
                break;
            }
        }
    }
    if p.keyword("LIMIT") {
        match p.next()? {
            Tok::Word(w) => match w.parse::<usize>() {
                Ok(n) if n > 0 => query.limit = Some(n),
                _ => return Err(error("BAD_LIMIT_VALUE", format!("bad LIMIT {w}"))),
            },
            other => return Err(error("BAD_LIMIT_VALUE", format!("bad LIMIT {other:?}"))),
        }
    }
    if p.keyword("PARAMETERS") {
        p.pos = p.toks.len();
    }
    if let Some(tok) = p.peek() {
        return Err(error("UNEXPECTED_INPUT", format!("unexpected {tok:?}")));
    }
    let finite = query.from.is_some() && query.to.is_some();
    if (dated || query.fields.contains(&Field::Date)) && !finite {
        return Err(error(
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            "segments.date needs a finite date range (BETWEEN or DURING)",
        ));
    }
    Ok(query)
}

/// One `WHERE` condition; true when it was on `segments.date`.
fn condition(p: &mut Parser, query: &mut Query, today: NaiveDate) -> Result<bool, QueryError> {
    let field = p.field()?;
    let op_tok = p.next()?;
    if field == Field::Date {
        let (from, to) = match op_tok {
            Tok::Word(w) if w.eq_ignore_ascii_case("BETWEEN") => {
                let from = date_literal(p.next()?, "INVALID_VALUE_WITH_BETWEEN_OPERATOR")?;
                if !p.keyword("AND") {
                    return Err(error("EXPECTED_AND", "BETWEEN needs AND"));
                }
                let to = date_literal(p.next()?, "INVALID_VALUE_WITH_BETWEEN_OPERATOR")?;
                (Some(from), Some(to))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("DURING") => match p.next()? {
                Tok::Word(range) => during(&range, today).ok_or_else(|| {
                    error(
                        "INVALID_VALUE_WITH_DURING_OPERATOR",
                        format!("unsupported date range {range}"),
                    )
                })?,
                other => {
                    return Err(error(
                        "INVALID_VALUE_WITH_DURING_OPERATOR",
                        format!("bad range {other:?}"),
                    ));
                }
            },
            Tok::Punct(op) => {
                let date = date_literal(p.next()?, "INVALID_DATE_FORMAT")?;
                let day = Days::new(1);
                match op {
                    "=" => (Some(date), Some(date)),
                    ">=" => (Some(date), None),
                    ">" => (Some(date + day), None),
                    "<=" => (None, Some(date)),
                    "<" => (None, Some(date - day)),
                    _ => return Err(error("BAD_OPERATOR", format!("{op} on segments.date"))),
                }
            }
            other => return Err(error("BAD_OPERATOR", format!("{other:?} on segments.date"))),
        };
        if let Some(from) = from {
            query.from = Some(query.from.map_or(from, |f| f.max(from)));
        }
        if let Some(to) = to {
            query.to = Some(query.to.map_or(to, |t| t.min(to)));
        }
        return Ok(true);
    }
    let op = match &op_tok {
        Tok::Punct("=") => Op::Eq,
        Tok::Punct("!=") => Op::Ne,
        Tok::Punct(">") => Op::Gt,
        Tok::Punct(">=") => Op::Ge,
        Tok::Punct("<") => Op::Lt,
        Tok::Punct("<=") => Op::Le,
        Tok::Word(w) if w.eq_ignore_ascii_case("IN") => Op::In,
        Tok::Word(w) if w.eq_ignore_ascii_case("NOT") && p.keyword("IN") => Op::NotIn,
        other => {
            return Err(error(
                "BAD_OPERATOR",
                format!("unsupported operator {other:?}"),
            ));
        }
    };
    if field.is_text() && !matches!(op, Op::Eq | Op::Ne | Op::In | Op::NotIn) {
        return Err(error("BAD_OPERATOR", format!("{op:?} on {}", field.gaql())));
    }
    let mut values = Vec::new();
    if matches!(op, Op::In | Op::NotIn) {
        if !p.punct("(") {
            return Err(error("EXPECTED_LIST", "IN needs a (list)"));
        }
        loop {
            values.push(p.literal(field)?);
            if !p.punct(",") {
                break;
            }
        }
        if !p.punct(")") {
            return Err(error("EXPECTED_LIST", "the list is not closed"));
        }
    } else {
        values.push(p.literal(field)?);
    }
    if field == Field::CampaignStatus {
        for value in &values {
            if let Lit::Text(s) = value
                && !STATUSES.contains(&s.as_str())
            {
                return Err(error("BAD_ENUM_CONSTANT", format!("unknown status {s}")));
            }
        }
    }
    query.filters.push(Filter { field, op, values });
    Ok(false)
}

/// `'2024-06-01'` or `'20240601'`.
fn date_literal(tok: Tok, code: &'static str) -> Result<NaiveDate, QueryError> {
    let Tok::Str(s) = tok else {
        return Err(error(code, format!("expected a quoted date, got {tok:?}")));
    };
    NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(&s, "%Y%m%d"))
        .map_err(|_| error(code, format!("bad date '{s}'")))
}

/// The predefined ranges the simulator knows, relative to `today`.
fn during(range: &str, today: NaiveDate) -> Option<(Option<NaiveDate>, Option<NaiveDate>)> {
    let yesterday = today - Days::new(1);
    let last = |n: u64| (Some(today - Days::new(n)), Some(yesterday));
    let month_start = today.with_day(1)?;
    Some(match range {
        "TODAY" => (Some(today), Some(today)),
        "YESTERDAY" => (Some(yesterday), Some(yesterday)),
        "LAST_7_DAYS" => last(7),
        "LAST_14_DAYS" => last(14),
        "LAST_30_DAYS" => last(30),
        "THIS_MONTH" => (Some(month_start), Some(today)),
        "LAST_MONTH" => (
            Some(month_start.checked_sub_months(Months::new(1))?),
            Some(month_start - Days::new(1)),
        ),
        _ => return None,
    })
}

/// One result row: a campaign over `days` days (one day when dated).
struct Row<'a> {
    campaign: &'a Campaign,
    date: Option<NaiveDate>,
    days: i64,
}

#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Int(i64),
    Float(f64),
    Text(String),
    Date(NaiveDate),
}

impl Row<'_> {
    fn cell(&self, field: Field) -> Cell {
        let c = self.campaign;
        let daily = &c.daily;
        match field {
            Field::CampaignId => Cell::Int(c.id as i64),
            Field::CampaignName => Cell::Text(c.name.clone()),
            Field::CampaignStatus => Cell::Text(c.status.clone()),
            Field::Impressions => Cell::Int(daily.impressions * self.days),
            Field::Clicks => Cell::Int(daily.clicks * self.days),
            Field::CostMicros => Cell::Int(daily.cost_micros * self.days),
            Field::Conversions => Cell::Float(daily.conversions * self.days as f64),
            Field::Ctr if daily.impressions > 0 => {
                Cell::Float(daily.clicks as f64 / daily.impressions as f64)
            }
            Field::Ctr => Cell::Float(0.0),
            Field::Date => Cell::Date(self.date.unwrap_or_default()),
        }
    }
}

fn compare(a: &Cell, b: &Cell) -> Ordering {
    match (a, b) {
        (Cell::Int(x), Cell::Int(y)) => x.cmp(y),
        (Cell::Float(x), Cell::Float(y)) => x.total_cmp(y),
        (Cell::Text(x), Cell::Text(y)) => x.cmp(y),
        (Cell::Date(x), Cell::Date(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

fn matches_lit(cell: &Cell, lit: &Lit) -> Option<Ordering> {
    match (cell, lit) {
        (Cell::Int(x), Lit::Num(y)) => (*x as f64).partial_cmp(y),
        (Cell::Float(x), Lit::Num(y)) => x.partial_cmp(y),
        (Cell::Text(x), Lit::Text(y)) => Some(x.as_str().cmp(y.as_str())),
        _ => None,
    }
}

impl Filter {
    fn keeps(&self, row: &Row<'_>) -> bool {
        let cell = row.cell(self.field);
        let ord = |lit: &Lit| matches_lit(&cell, lit);
        let first = self.values.first().and_then(ord);
        match self.op {
            Op::Eq => first == Some(Ordering::Equal),
            Op::Ne => first != Some(Ordering::Equal),
            Op::Gt => first == Some(Ordering::Greater),
            Op::Ge => matches!(first, Some(Ordering::Greater | Ordering::Equal)),
            Op::Lt => first == Some(Ordering::Less),
            Op::Le => matches!(first, Some(Ordering::Less | Ordering::Equal)),
            Op::In => self.values.iter().any(|v| ord(v) == Some(Ordering::Equal)),
            Op::NotIn => !self.values.iter().any(|v| ord(v) == Some(Ordering::Equal)),
        }
    }
}

/// Runs `query` over the customer's campaigns up to `today`: one row per
/// campaign and active day when `segments.date` is selected, else one row
/// per campaign with totals over its active days in the range.
pub(crate) fn run(
    query: &Query,
    customer_id: &str,
    customer: &Customer,
    today: NaiveDate,
) -> Vec<Value> {
    let by_date = query.fields.contains(&Field::Date);
    // Only attributes, no range: a plain listing of every campaign.
    let listing = !by_date && query.from.is_none() && !query.fields.iter().any(|f| f.is_metric());
    let mut rows = Vec::new();
    for campaign in &customer.campaigns {
        let from = query
            .from
            .map_or(campaign.start_date, |f| f.max(campaign.start_date));
        let mut to = query.to.unwrap_or(today).min(today);
        if let Some(end) = campaign.end_date {
            to = to.min(end);
        }
        let days = (to - from).num_days() + 1;
        if by_date {
            rows.extend(from.iter_days().take_while(|d| *d <= to).map(|d| Row {
                campaign,
                date: Some(d),
                days: 1,
            }));
        } else if days > 0 || listing {
            rows.push(Row {
                campaign,
                date: None,
                days: days.max(0),
            });
        }
    }
    rows.retain(|row| query.filters.iter().all(|f| f.keeps(row)));
    rows.sort_by(|a, b| {
        for (field, desc) in &query.order {
            let ord = compare(&a.cell(*field), &b.cell(*field));
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        (a.campaign.id, a.date).cmp(&(b.campaign.id, b.date))
    });
    if let Some(limit) = query.limit {
        rows.truncate(limit);
    }
    rows.iter()
        .map(|row| to_json(query, customer_id, row))
        .collect()
}

/// proto3 JSON: lowerCamelCase, int64 as strings, defaults left out.
fn to_json(query: &Query, customer_id: &str, row: &Row<'_>) -> Value {
    let mut campaign = Map::new();
    campaign.insert(
        "resourceName".into(),
        json!(format!(
            "customers/{customer_id}/campaigns/{}",
            row.campaign.id
        )),
    );
    let mut metrics = Map::new();
    let mut segments = Map::new();
    for field in &query.fields {
        let (target, key) = match field {
            Field::CampaignId | Field::CampaignName | Field::CampaignStatus => {
                (&mut campaign, &field.mask()["campaign.".len()..])
            }
            Field::Date => (&mut segments, "date"),
            _ => (&mut metrics, &field.mask()["metrics.".len()..]),
        };
        let value = match row.cell(*field) {
            Cell::Int(0) => continue,
            Cell::Int(n) => json!(n.to_string()),
            Cell::Float(0.0) => continue,
            Cell::Float(x) => json!(x),
            Cell::Text(s) if s.is_empty() => continue,
            Cell::Text(s) => json!(s),
            Cell::Date(d) => json!(d.format("%Y-%m-%d").to_string()),
        };
        target.insert(key.to_string(), value);
    }
    let mut out = Map::new();
    out.insert("campaign".into(), Value::Object(campaign));
    if !metrics.is_empty() {
        out.insert("metrics".into(), Value::Object(metrics));
    }
    if !segments.is_empty() {
        out.insert("segments".into(), Value::Object(segments));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn between_and_filters_parse_into_a_finite_range() {
        let q = parse(
            "SELECT campaign.id, metrics.cost_micros, segments.date FROM campaign \
             WHERE segments.date BETWEEN '2024-06-01' AND '20240630' \
             AND campaign.id IN (1, 2) AND campaign.status = 'ENABLED' ORDER BY segments.date DESC",
            day("2024-07-01"),
        )
        .unwrap();
        assert_eq!(q.from, Some(day("2024-06-01")));
        assert_eq!(q.to, Some(day("2024-06-30")));
        assert_eq!(q.filters.len(), 2);
        assert_eq!(q.order, vec![(Field::Date, true)]);
    }

    #[test]
    fn bad_queries_name_the_query_error() {
        let today = day("2024-07-01");
        let code = |q: &str| parse(q, today).unwrap_err().code;
        assert_eq!(code("SELECT foo.bar FROM campaign"), "UNRECOGNIZED_FIELD");
        assert_eq!(
            code("SELECT segments.date FROM campaign"),
            "EXPECTED_FILTERS_ON_DATE_RANGE"
        );
        assert_eq!(
            code("SELECT campaign.id FROM campaign WHERE segments.date >= '2024-01-01'"),
            "EXPECTED_FILTERS_ON_DATE_RANGE"
        );
        assert_eq!(
            code("SELECT campaign.id FROM ad_group"),
            "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE"
        );
        assert_eq!(
            code("SELECT campaign.id FROM campaign WHERE segments.date DURING NEVER"),
            "INVALID_VALUE_WITH_DURING_OPERATOR"
        );
        assert_eq!(code("campaign.id FROM campaign"), "EXPECTED_SELECT");
    }
}
