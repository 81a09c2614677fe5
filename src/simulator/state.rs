//! The simulator's world: users, pages, businesses, codes and the token state
//! machine (issue, expire, revoke, data-access lapse). Everything is keyed by
//! HashMaps so a call costs the same with 10 or 10,000 users.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::SimConfig;
use super::errors::{ControlError, GraphError};
use super::wire::random_alnum;

pub(crate) const DEFAULT_SCOPES: [&str; 5] = [
    "pages_show_list",
    "pages_read_engagement",
    "read_insights",
    "ads_read",
    "business_management",
];

pub(crate) const DEMO_USER_ID: &str = "100000000000001";

/// Revocation subcode used when none is given.
pub(crate) const DEFAULT_REVOKE_SUBCODE: i64 = 460;

pub(crate) struct User {
    pub name: String,
    pub scopes: Vec<String>,
    pub page_ids: Vec<String>,
    pub data_access_expires_at: i64,
    pub sessions: Sessions,
}

/// The sessions of a user or page. A session ends on revocation: tokens of
/// an older generation are dead, with the subcode stored in `ended[generation]`.
#[derive(Default)]
pub(crate) struct Sessions {
    pub generation: usize,
    ended: Vec<i64>,
}

impl Sessions {
    /// Ends the current session with `subcode`.
    fn end(&mut self, subcode: i64) {
        self.ended.push(subcode);
        self.generation += 1;
    }

    /// The subcode that ended the session of `generation`, if it has ended.
    fn ended(&self, generation: usize) -> Option<i64> {
        (generation < self.generation).then(|| self.ended[generation])
    }
}

pub(crate) struct Page {
    pub name: String,
    pub category: String,
    pub tasks: Vec<String>,
    pub sessions: Sessions,
}

pub(crate) struct Business {
    pub name: String,
    pub system_user_id: String,
    pub page_ids: Vec<String>,
}

/// Who a page token speaks for.
#[derive(Clone)]
pub(crate) enum PageOwner {
    User { user_id: String, generation: usize },
    Business { business_id: String },
}

#[derive(Clone)]
pub(crate) enum Subject {
    User {
        user_id: String,
        generation: usize,
        long_lived: bool,
    },
    Page {
        page_id: String,
        generation: usize,
        owner: PageOwner,
        parent: String,
    },
    SystemUser {
        business_id: String,
    },
    App,
}

#[derive(Clone)]
pub(crate) struct Token {
    pub subject: Subject,
    pub issued_at: i64,
    /// 0 means never.
    pub expires_at: i64,
    pub revoked: Option<i64>,
    pub rerequest: bool,
}

pub(crate) struct Code {
    pub user_id: String,
    pub redirect_uri: String,
    pub expires_at: i64,
    pub used: bool,
    pub rerequest: bool,
}

/// A token is unusable: the 190 subcode and Meta-like message.
pub(crate) struct TokenProblem {
    pub subcode: i64,
    pub message: String,
}

/// What a valid token may act as.
#[derive(Clone)]
pub(crate) enum Caller {
    User { user_id: String },
    Page { page_id: String },
    SystemUser { business_id: String },
    App,
}

pub(crate) struct World {
    pub config: SimConfig,
    pub users: HashMap<String, User>,
    pub pages: HashMap<String, Page>,
    pub businesses: HashMap<String, Business>,
    pub system_users: HashMap<String, String>,
    pub tokens: HashMap<String, Token>,
    pub codes: HashMap<String, Code>,
    pub dialog_user: Option<String>,
    /// Ad accounts, posts, reels and the other insights-side data.
    pub insights: super::insights_world::InsightsWorld,
    next_id: u64,
}

impl World {
    pub fn new(config: SimConfig, now: i64) -> Self {
        let mut world = Self {
            users: HashMap::new(),
            pages: HashMap::new(),
            businesses: HashMap::new(),
            system_users: HashMap::new(),
            tokens: HashMap::new(),
            codes: HashMap::new(),
            dialog_user: None,
            insights: Default::default(),
            next_id: 100_000_000_000_100,
            config,
        };
        if world.config.demo_user {
            let pages = vec![
                NewPage::named("100000000000011", "Demo Coffee", "Coffee Shop"),
                NewPage::named("100000000000012", "Demo Books", "Book Store"),
            ];
            world
                .create_user(
                    Some(DEMO_USER_ID.into()),
                    Some("Demo User".into()),
                    None,
                    pages,
                    now,
                )
                .expect("the demo user is the first user");
            world.dialog_user = Some(DEMO_USER_ID.into());
        }
        world
    }

    /// A numeric id no user, page or business has.
    pub fn fresh_id(&mut self) -> String {
        loop {
            let id = self.next_id.to_string();
            self.next_id += 1;
            if !self.users.contains_key(&id)
                && !self.pages.contains_key(&id)
                && !self.businesses.contains_key(&id)
                && !self.system_users.contains_key(&id)
            {
                return id;
            }
        }
    }

    fn taken(&self, id: &str) -> bool {
        self.users.contains_key(id)
            || self.businesses.contains_key(id)
            || self.system_users.contains_key(id)
    }

    /// Creates a user with its pages (an existing page id links that page,
    /// as a second admin would). Returns the user id.
    pub fn create_user(
        &mut self,
        id: Option<String>,
        name: Option<String>,
        scopes: Option<Vec<String>>,
        pages: Vec<NewPage>,
        now: i64,
    ) -> Result<String, ControlError> {
        let id = match id {
            Some(id) if self.taken(&id) || self.pages.contains_key(&id) => {
                return Err(ControlError::Conflict(format!("id {id} is taken")));
            }
            Some(id) if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(ControlError::Invalid("ids are numeric strings".into()));
            }
            Some(id) => id,
            None => self.fresh_id(),
        };
        let mut page_ids = Vec::with_capacity(pages.len());
        for page in pages {
            page_ids.push(self.ensure_page(page)?);
        }
        let user = User {
            name: name.unwrap_or_else(|| format!("Sim User {id}")),
            scopes: scopes
                .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()),
            page_ids,
            data_access_expires_at: now + self.config.data_access_secs,
            sessions: Sessions::default(),
        };
        self.users.insert(id.clone(), user);
        Ok(id)
    }

    /// The page with this id, created when new.
    pub fn ensure_page(&mut self, page: NewPage) -> Result<String, ControlError> {
        let id = match page.id {
            Some(id) if self.pages.contains_key(&id) => return Ok(id),
            Some(id) if self.taken(&id) => {
                return Err(ControlError::Conflict(format!("id {id} is taken")));
            }
            Some(id) if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(ControlError::Invalid("ids are numeric strings".into()));
            }
            Some(id) => id,
            None => self.fresh_id(),
        };
        let page = Page {
            name: page.name.unwrap_or_else(|| format!("Sim Page {id}")),
            category: page.category.unwrap_or_else(|| "Retail Company".into()),
            tasks: page.tasks.unwrap_or_else(|| {
                [
                    "ADVERTISE",
                    "ANALYZE",
                    "CREATE_CONTENT",
                    "MESSAGING",
                    "MODERATE",
                    "MANAGE",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            }),
            sessions: Sessions::default(),
        };
        self.pages.insert(id.clone(), page);
        Ok(id)
    }

    pub fn create_business(
        &mut self,
        id: Option<String>,
        name: Option<String>,
        page_ids: Vec<String>,
        now: i64,
    ) -> Result<(String, String, String, String), ControlError> {
        let id = match id {
            Some(id) if self.taken(&id) || self.pages.contains_key(&id) => {
                return Err(ControlError::Conflict(format!("id {id} is taken")));
            }
            Some(id) => id,
            None => self.fresh_id(),
        };
        let mut pages = Vec::with_capacity(page_ids.len());
        for page_id in page_ids {
            pages.push(self.ensure_page(NewPage {
                id: Some(page_id),
                ..NewPage::default()
            })?);
        }
        self.businesses.insert(
            id.clone(),
            Business {
                name: name.unwrap_or_else(|| format!("Sim Business {id}")),
                system_user_id: String::new(),
                page_ids: pages,
            },
        );
        let system_user_id = self.fresh_id();
        self.system_users.insert(system_user_id.clone(), id.clone());
        let business = self.businesses.get_mut(&id).expect("just inserted");
        business.system_user_id = system_user_id;
        let name = business.name.clone();
        let subject = Subject::SystemUser {
            business_id: id.clone(),
        };
        let token = self.issue(subject, now, 0, false);
        let system_user_id = self.businesses[&id].system_user_id.clone();
        Ok((id, name, system_user_id, token))
    }

    /// A fresh login: a new user token and data access from now on.
    pub fn login(
        &mut self,
        user_id: &str,
        long_lived: bool,
        rerequest: bool,
        now: i64,
    ) -> Option<(String, i64)> {
        let data_access_secs = self.config.data_access_secs;
        let user = self.users.get_mut(user_id)?;
        user.data_access_expires_at = now + data_access_secs;
        let generation = user.sessions.generation;
        let lifetime = if long_lived {
            self.config.long_lived_secs
        } else {
            self.config.short_lived_secs
        };
        let subject = Subject::User {
            user_id: user_id.to_string(),
            generation,
            long_lived,
        };
        Some((
            self.issue(subject, now, now + lifetime, rerequest),
            lifetime,
        ))
    }

    /// Stores a new, never-seen token string for `subject`.
    pub fn issue(
        &mut self,
        subject: Subject,
        now: i64,
        expires_at: i64,
        rerequest: bool,
    ) -> String {
        let app = matches!(subject, Subject::App);
        let token = loop {
            let candidate = if app {
                format!("{}|{}", self.config.fb_app_id, random_alnum(27))
            } else {
                format!("EAAB{}", random_alnum(60))
            };
            if !self.tokens.contains_key(&candidate) {
                break candidate;
            }
        };
        self.tokens.insert(
            token.clone(),
            Token {
                subject,
                issued_at: now,
                expires_at,
                revoked: None,
                rerequest,
            },
        );
        token
    }

    /// A page token derived from the valid user or system-user `parent`.
    pub fn issue_page_token(&mut self, parent: &str, page_id: &str, now: i64) -> String {
        let parent_token = self.tokens[parent].clone();
        let generation = self.pages[page_id].sessions.generation;
        let (owner, expires_at) = match parent_token.subject {
            Subject::User {
                user_id,
                generation,
                long_lived,
            } => (
                PageOwner::User {
                    user_id,
                    generation,
                },
                if long_lived {
                    0
                } else {
                    parent_token.expires_at
                },
            ),
            Subject::SystemUser { business_id } => (PageOwner::Business { business_id }, 0),
            Subject::Page { .. } | Subject::App => unreachable!("pages derive from users"),
        };
        let subject = Subject::Page {
            page_id: page_id.to_string(),
            generation,
            owner,
            parent: parent.to_string(),
        };
        self.issue(subject, now, expires_at, false)
    }

    /// `{app_id}|{app_secret}` or an app token this simulator issued.
    pub fn is_app_token(&self, token: &str) -> bool {
        let config = &self.config;
        if token.len() == config.fb_app_id.len() + 1 + config.fb_app_secret.len()
            && token == format!("{}|{}", config.fb_app_id, config.fb_app_secret)
        {
            return true;
        }
        matches!(self.tokens.get(token), Some(t) if matches!(t.subject, Subject::App) && t.revoked.is_none())
    }

    /// The user whose session `generation` is current; else the subcode that
    /// ended it.
    fn live_user(&self, user_id: &str, generation: usize) -> Result<&User, i64> {
        let user = &self.users[user_id];
        match user.sessions.ended(generation) {
            Some(subcode) => Err(subcode),
            None => Ok(user),
        }
    }

    /// Why `token` cannot be used at `now`, if it cannot.
    pub fn problem(&self, token: &Token, now: i64) -> Option<TokenProblem> {
        if let Some(subcode) = token.revoked {
            return Some(self.revoked(subcode));
        }
        let data_user = match &token.subject {
            Subject::User {
                user_id,
                generation,
                ..
            } => Some(self.live_user(user_id, *generation)),
            Subject::Page {
                page_id,
                generation,
                owner,
                parent,
            } => {
                let page_ended = self.pages[page_id].sessions.ended(*generation);
                let parent_revoked = self.tokens.get(parent).and_then(|p| p.revoked);
                if let Some(subcode) = page_ended.or(parent_revoked) {
                    return Some(self.revoked(subcode));
                }
                match owner {
                    PageOwner::User {
                        user_id,
                        generation,
                    } => Some(self.live_user(user_id, *generation)),
                    PageOwner::Business { .. } => None,
                }
            }
            Subject::SystemUser { .. } | Subject::App => None,
        };
        let data_user = match data_user.transpose() {
            Ok(user) => user,
            Err(subcode) => return Some(self.revoked(subcode)),
        };
        if token.expires_at != 0 && now >= token.expires_at {
            return Some(TokenProblem {
                subcode: 463,
                message: format!(
                    "Error validating access token: Session has expired on {}. The current time is {}.",
                    meta_time(token.expires_at),
                    meta_time(now)
                ),
            });
        }
        if let Some(user) = data_user
            && now >= user.data_access_expires_at
        {
            return Some(TokenProblem {
                subcode: 463,
                message: format!(
                    "Error validating access token: Data access for this user expired on {}. The current time is {}.",
                    meta_time(user.data_access_expires_at),
                    meta_time(now)
                ),
            });
        }
        None
    }

    fn revoked(&self, subcode: i64) -> TokenProblem {
        let message = match subcode {
            458 => format!(
                "Error validating access token: The user has not authorized application {}.",
                self.config.fb_app_id
            ),
            460 => "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.".into(),
            463 => "Error validating access token: Session has expired.".into(),
            466 => "Error validating access token: The session was invalidated explicitly using an API call.".into(),
            467 => "Error validating access token: The session is invalid because the user logged out.".into(),
            492 => "Error validating access token: The session is invalid because the user no longer has a role on the Page.".into(),
            _ => "Error validating access token: The session has been invalidated.".into(),
        };
        TokenProblem { subcode, message }
    }

    /// Resolves a token for a Graph call: 190 for anything unusable.
    pub fn caller(&self, token: &str, now: i64) -> Result<Caller, GraphError> {
        if self.is_app_token(token) {
            return Ok(Caller::App);
        }
        let Some(record) = self.tokens.get(token) else {
            return Err(GraphError::unparseable_token());
        };
        if let Some(problem) = self.problem(record, now) {
            return Err(GraphError::token(Some(problem.subcode), problem.message));
        }
        Ok(match &record.subject {
            Subject::User { user_id, .. } => Caller::User {
                user_id: user_id.clone(),
            },
            Subject::Page { page_id, .. } => Caller::Page {
                page_id: page_id.clone(),
            },
            Subject::SystemUser { business_id } => Caller::SystemUser {
                business_id: business_id.clone(),
            },
            Subject::App => Caller::App,
        })
    }

    /// The page a token belongs to, for `X-Business-Use-Case-Usage`.
    pub fn page_of_token(&self, token: &str) -> Option<String> {
        match &self.tokens.get(token)?.subject {
            Subject::Page { page_id, .. } => Some(page_id.clone()),
            _ => None,
        }
    }

    /// Ends the user's session: all its tokens and their page tokens die.
    pub fn revoke_user(&mut self, user_id: &str, subcode: i64) -> Result<(), ControlError> {
        self.user_mut(user_id)?.sessions.end(subcode);
        Ok(())
    }

    /// Invalidates every token of one page.
    pub fn revoke_page(&mut self, page_id: &str, subcode: i64) -> Result<(), ControlError> {
        let page = self.pages.get_mut(page_id);
        page.ok_or_else(|| ControlError::missing("page", page_id))?
            .sessions
            .end(subcode);
        Ok(())
    }

    /// Invalidates one token (and page tokens derived from it).
    pub fn revoke_token(&mut self, token: &str, subcode: i64) -> Result<(), ControlError> {
        let record = self
            .tokens
            .get_mut(token)
            .ok_or_else(|| ControlError::NotFound("no such token".into()))?;
        record.revoked = Some(subcode);
        Ok(())
    }

    pub fn lapse_data_access(&mut self, user_id: &str, now: i64) -> Result<(), ControlError> {
        self.user_mut(user_id)?.data_access_expires_at = now;
        Ok(())
    }

    fn user_mut(&mut self, user_id: &str) -> Result<&mut User, ControlError> {
        let user = self.users.get_mut(user_id);
        user.ok_or_else(|| ControlError::missing("user", user_id))
    }
}

/// A page to create or link.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub(crate) struct NewPage {
    pub id: Option<String>,
    pub name: Option<String>,
    pub category: Option<String>,
    pub tasks: Option<Vec<String>>,
}

impl NewPage {
    fn named(id: &str, name: &str, category: &str) -> Self {
        Self {
            id: Some(id.into()),
            name: Some(name.into()),
            category: Some(category.into()),
            tasks: None,
        }
    }
}

/// `Wednesday, 16-Nov-22 07:45:51 UTC`, the style of Meta's expiry messages.
fn meta_time(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .map(|t| t.format("%A, %d-%b-%y %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| unix.to_string())
}
