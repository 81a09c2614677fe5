//! The throttle that keeps calls under each of Meta's limits (wire-spec 3).
//! Meta scopes its limits, and so does the throttle: a call waits only for
//! the scopes it belongs to, so one throttled page does not hold up the
//! others. What the usage headers say is read in `usage`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::usage::{Reading, Source, Usage};

/// One limit Meta counts calls against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `X-App-Usage`: the app's rolling one-hour budget.
    App,
    /// `X-Business-Use-Case-Usage`: one object (page, ad account without
    /// `act_`, business) and one use case (`pages`, `ads_insights`, ...).
    Business { id: String, use_case: String },
    /// `X-Ad-Account-Usage` and `x-fb-ads-insights-throttle`: one ad
    /// account, without `act_`.
    AdAccount(String),
    /// `X-Page-Usage`: the calling token's own budget, by fingerprint.
    Token(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::App => write!(f, "the app"),
            Scope::Business { id, use_case } => {
                write!(f, "business object {id} ({use_case})")
            }
            Scope::AdAccount(id) => write!(f, "ad account act_{id}"),
            // Never the fingerprint: it is derived from a token.
            Scope::Token(_) => write!(f, "the calling page token"),
        }
    }
}

/// What the throttle knows about a call before it is made: its token's
/// fingerprint, its path templates and the object ids its paths name.
#[derive(Debug, Clone, Default)]
pub struct Call {
    token: Option<String>,
    templates: Vec<String>,
    objects: Vec<String>,
    ad_accounts: Vec<String>,
}

impl Call {
    /// `token` is a fingerprint, never the token itself.
    pub fn new(token: Option<String>) -> Self {
        Self {
            token,
            ..Self::default()
        }
    }

    /// Adds one Graph path (`/{id}/edge`, a batch op's `v25.0/{id}/edge?…`).
    /// The first segment names the object: `act_N` an ad account, `N` a
    /// page or another node, `P_N` a post of page `P`.
    pub fn path(mut self, path: &str) -> Self {
        let path = path.split('?').next().unwrap_or_default();
        let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.first().is_some_and(|s| is_version(s)) {
            segments.remove(0);
        }
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let template: Vec<String> = segments
            .iter()
            .map(|s| match s.strip_prefix("act_") {
                Some(id) if numeric(id) => "act_{id}".to_string(),
                _ if numeric(s)
                    || s.split_once('_')
                        .is_some_and(|(a, b)| numeric(a) && numeric(b)) =>
                {
                    "{id}".to_string()
                }
                _ => s.to_string(),
            })
            .collect();
        self.templates.push(format!("/{}", template.join("/")));
        if let Some(first) = segments.first() {
            if let Some(id) = first.strip_prefix("act_").filter(|id| numeric(id)) {
                self.ad_accounts.push(id.to_string());
                self.objects.push(id.to_string());
            } else if numeric(first) {
                self.objects.push(first.to_string());
            } else if let Some((page, n)) = first.split_once('_')
                && numeric(page)
                && numeric(n)
            {
                self.objects.push(first.to_string());
                self.objects.push(page.to_string());
            }
        }
        self
    }
}

fn is_version(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && (a.bytes().chain(b.bytes())).all(|c| c.is_ascii_digit())
        })
}

/// Learned maps are bounded: past this many entries they start over.
const MAX_LEARNED: usize = 100_000;
/// Past this many hot scopes, those no longer paused are forgotten (a scope
/// that is called again reports its usage again).
const MAX_HOT: usize = 10_000;
/// A token seen under more objects than this is not a page token.
const MAX_TOKEN_OBJECTS: usize = 8;

/// Slows calls down as a scope nears its limit: above `slow_pct` each call
/// of that scope waits a little; above `pause_pct` (or when Meta gives a
/// regain time) the scope's calls pause.
#[derive(Debug)]
pub struct Throttle {
    slow_pct: f64,
    pause_pct: f64,
    pause: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_pct: f64,
    /// Scopes at or above `slow_pct` or paused; cooler ones are dropped.
    hot: HashMap<Scope, Heat>,
    /// The business objects a node (`o:` id) or a token (`t:` fingerprint)
    /// was last answered under: a video under its page, a page token under
    /// its page, a campaign under its ad account.
    owners: HashMap<String, BTreeSet<String>>,
    /// The use cases each path template was answered under, so that an ad
    /// account's throttled `ads_insights` does not hold up its
    /// `ads_management` calls.
    use_cases: HashMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Heat {
    pct: f64,
    paused_until: Option<Instant>,
}

impl Throttle {
    pub fn new(slow_pct: f64, pause_pct: f64, pause: Duration) -> Self {
        Self {
            slow_pct,
            pause_pct,
            pause,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain data; a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest highest usage percentage seen, of any scope.
    pub fn last_pct(&self) -> f64 {
        self.state().last_pct
    }

    /// Records what the response to `call` said.
    pub fn observe(&self, call: &Call, usage: &Usage) {
        let now = Instant::now();
        let mut s = self.state();
        s.last_pct = usage.max_pct();
        let mut business = BTreeSet::new();
        let mut use_cases = BTreeSet::new();
        for reading in &usage.readings {
            if let Source::Business { id, use_case } = &reading.source {
                business.insert(id.clone());
                use_cases.insert(use_case.clone());
            }
        }
        if !business.is_empty() {
            s.learn(call, &business, &use_cases);
        }
        for reading in &usage.readings {
            for scope in resolve(reading, call, &business) {
                self.heat(&mut s, scope, reading, now);
            }
        }
        if s.hot.len() > MAX_HOT {
            s.hot
                .retain(|_, h| h.paused_until.is_some_and(|until| until > now));
        }
    }

    fn heat(&self, s: &mut State, scope: Scope, reading: &Reading, now: Instant) {
        let pause = match reading.regain {
            Some(regain) if reading.pct >= self.pause_pct => Some(regain.max(self.pause)),
            Some(regain) => Some(regain),
            None if reading.pct >= self.pause_pct => Some(self.pause),
            None => None,
        };
        let paused_until = s
            .hot
            .get(&scope)
            .and_then(|h| h.paused_until)
            .filter(|u| *u > now);
        let paused_until = match (paused_until, pause.map(|p| now + p)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if reading.pct >= self.slow_pct || paused_until.is_some() {
            s.hot.insert(
                scope,
                Heat {
                    pct: reading.pct,
                    paused_until,
                },
            );
        } else {
            s.hot.remove(&scope);
        }
    }

    /// How long `call` should wait, and the scope that makes it wait.
    pub fn delay(&self, call: &Call) -> Option<(Duration, Scope)> {
        let now = Instant::now();
        let s = self.state();
        if s.hot.is_empty() {
            return None;
        }
        let objects = s.objects_of(call);
        let use_cases = s.use_cases_of(call);
        s.hot
            .iter()
            .filter(|(scope, _)| match scope {
                Scope::App => true,
                Scope::Token(t) => call.token.as_ref() == Some(t),
                Scope::AdAccount(id) => objects.contains(id),
                Scope::Business { id, use_case } => {
                    objects.contains(id) && use_cases.as_ref().is_none_or(|u| u.contains(use_case))
                }
            })
            .map(|(scope, heat)| (self.wait(heat, now), scope))
            .filter(|(wait, _)| !wait.is_zero())
            .max_by_key(|(wait, _)| *wait)
            .map(|(wait, scope)| (wait, scope.clone()))
    }

    fn wait(&self, heat: &Heat, now: Instant) -> Duration {
        if let Some(until) = heat.paused_until
            && until > now
        {
            return until - now;
        }
        if heat.pct >= self.slow_pct && self.pause_pct > self.slow_pct {
            // Linear from 0 at slow_pct to 1 s at pause_pct.
            let f = (heat.pct - self.slow_pct) / (self.pause_pct - self.slow_pct);
            return Duration::from_secs_f64(f.clamp(0.0, 1.0));
        }
        Duration::ZERO
    }
}

/// The scopes one reading applies to, for the call that received it.
fn resolve(reading: &Reading, call: &Call, business: &BTreeSet<String>) -> Vec<Scope> {
    match &reading.source {
        Source::App => vec![Scope::App],
        Source::Page => call.token.iter().cloned().map(Scope::Token).collect(),
        Source::Business { id, use_case } => vec![Scope::Business {
            id: id.clone(),
            use_case: use_case.clone(),
        }],
        // The account of the path; else the objects the answer named.
        Source::AdAccount if !call.ad_accounts.is_empty() => call
            .ad_accounts
            .iter()
            .cloned()
            .map(Scope::AdAccount)
            .collect(),
        Source::AdAccount => business.iter().cloned().map(Scope::AdAccount).collect(),
    }
}

impl State {
    /// Remembers which objects and use cases answered for `call`.
    fn learn(&mut self, call: &Call, business: &BTreeSet<String>, use_cases: &BTreeSet<String>) {
        if self.owners.len() > MAX_LEARNED {
            self.owners.clear();
        }
        // When the answer names the call's own object (a page), that object
        // is the scope, whatever else the header lists; otherwise the call's
        // objects (a video, a campaign) belong to what it names.
        let named: BTreeSet<String> = call
            .objects
            .iter()
            .filter(|o| business.contains(*o))
            .cloned()
            .collect();
        let owners = if named.is_empty() { business } else { &named };
        for object in &call.objects {
            self.owners.insert(format!("o:{object}"), owners.clone());
        }
        if let Some(token) = &call.token {
            let learned = self.owners.entry(format!("t:{token}")).or_default();
            if learned.len() <= MAX_TOKEN_OBJECTS {
                learned.extend(owners.iter().cloned());
            }
        }
        if self.use_cases.len() > MAX_LEARNED {
            self.use_cases.clear();
        }
        for template in &call.templates {
            self.use_cases
                .entry(template.clone())
                .or_default()
                .extend(use_cases.iter().cloned());
        }
    }

    /// The business objects a call counts against: the objects its paths
    /// name and what they were last answered under. When none of them is
    /// known yet (a video, a batch), those its token was answered under,
    /// provided the token speaks for few objects (a page token).
    fn objects_of(&self, call: &Call) -> BTreeSet<String> {
        let mut objects: BTreeSet<String> = call.objects.iter().cloned().collect();
        let mut known = !call.ad_accounts.is_empty();
        for object in &call.objects {
            if let Some(owners) = self.owners.get(&format!("o:{object}")) {
                known = true;
                objects.extend(owners.iter().cloned());
            }
        }
        if !known
            && let Some(owners) = call
                .token
                .as_ref()
                .and_then(|t| self.owners.get(&format!("t:{t}")))
            && owners.len() <= MAX_TOKEN_OBJECTS
        {
            objects.extend(owners.iter().cloned());
        }
        objects
    }

    /// The use cases a call's templates were answered under; `None` when
    /// some template has not been seen yet (then every use case applies).
    fn use_cases_of(&self, call: &Call) -> Option<BTreeSet<String>> {
        let mut all = BTreeSet::new();
        for template in &call.templates {
            all.extend(self.use_cases.get(template)?.iter().cloned());
        }
        Some(all)
    }
}

#[cfg(test)]
mod tests {
    use super::super::usage::{headers, parse};
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn buc(id: &str, use_case: &str, pct: u32, regain_minutes: u32) -> Usage {
        let value = format!(
            r#"{{"{id}":[{{"type":"{use_case}","call_count":{pct},"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":{regain_minutes}}}]}}"#
        );
        let mut h = HeaderMap::new();
        h.insert(
            "x-business-use-case-usage",
            HeaderValue::from_str(&value).unwrap(),
        );
        parse(&h).unwrap()
    }

    fn throttle() -> Throttle {
        Throttle::new(80.0, 95.0, Duration::from_secs(60))
    }

    fn token(t: &str) -> Option<String> {
        Some(t.to_string())
    }

    #[test]
    fn paths_name_their_objects_and_templates() {
        let c = Call::new(None).path("/act_42/insights");
        assert_eq!(
            (c.ad_accounts, c.objects),
            (vec!["42".into()], vec!["42".into()])
        );
        assert_eq!(c.templates, ["/act_{id}/insights"]);
        let c = Call::new(None).path("v25.0/104_7/insights?metric=post_clicks");
        assert_eq!(c.objects, ["104_7", "104"]);
        assert_eq!(c.templates, ["/{id}/insights"]);
        let c = Call::new(None).path("/me/accounts");
        assert!(c.objects.is_empty());
        assert_eq!(c.templates, ["/me/accounts"]);
    }

    #[test]
    fn a_throttled_page_pauses_its_own_calls_only() {
        let t = throttle();
        let page_a = Call::new(token("ta")).path("/111/published_posts");
        let page_b = Call::new(token("tb")).path("/222/published_posts");
        t.observe(&page_a, &buc("111", "pages", 100, 10));
        let (wait, scope) = t.delay(&page_a).unwrap();
        assert!(wait > Duration::from_secs(590), "{wait:?}");
        assert_eq!(
            scope,
            Scope::Business {
                id: "111".into(),
                use_case: "pages".into()
            }
        );
        assert_eq!(t.delay(&page_b), None);
        // A video of page A, with A's token, is held back too; B's is not.
        assert!(
            t.delay(&Call::new(token("ta")).path("/9001/video_insights"))
                .is_some()
        );
        assert_eq!(
            t.delay(&Call::new(token("tb")).path("/9002/video_insights")),
            None
        );
        // The app-token debug_token call is in the app's scope only.
        assert_eq!(t.delay(&Call::new(token("app")).path("/debug_token")), None);
    }

    #[test]
    fn app_usage_holds_every_call_and_ad_accounts_are_separate() {
        let t = throttle();
        let account = Call::new(token("sys")).path("/act_1/insights");
        let h = headers(&[("x-ad-account-usage", r#"{"acc_id_util_pct":99}"#)]);
        t.observe(&account, &parse(&h).unwrap());
        assert!(t.delay(&account).is_some());
        assert_eq!(
            t.delay(&Call::new(token("sys")).path("/act_2/insights")),
            None
        );

        let h = headers(&[(
            "x-app-usage",
            r#"{"call_count":96,"total_cputime":1,"total_time":1}"#,
        )]);
        t.observe(&Call::new(token("u")).path("/me"), &parse(&h).unwrap());
        assert!(
            t.delay(&Call::new(token("other")).path("/act_2/insights"))
                .is_some()
        );
    }

    #[test]
    fn use_cases_of_one_ad_account_are_separate() {
        let t = throttle();
        let insights = Call::new(token("sys")).path("/act_1/insights");
        let campaigns = Call::new(token("sys")).path("/act_1/campaigns");
        t.observe(&campaigns, &buc("1", "ads_management", 1, 0));
        t.observe(&insights, &buc("1", "ads_insights", 100, 5));
        assert!(t.delay(&insights).is_some());
        assert_eq!(t.delay(&campaigns), None);
    }

    #[test]
    fn usage_below_the_pause_slows_and_above_it_pauses() {
        let t = Throttle::new(80.0, 95.0, Duration::from_millis(200));
        let call = Call::new(token("t")).path("/1/published_posts");
        assert_eq!(t.delay(&call), None);
        t.observe(&call, &buc("1", "pages", 90, 0));
        let (wait, _) = t.delay(&call).unwrap();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        t.observe(&call, &buc("1", "pages", 99, 0));
        assert!(t.delay(&call).unwrap().0 > Duration::from_millis(100));
        assert_eq!(t.last_pct(), 99.0);
    }
}
