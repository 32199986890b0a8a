//! Who is calling: bearer tokens of agents, readers and operators, and a reader's
//! scope (which checks and agents it may see).
//!
//! A presented token is looked up by its SHA-256 digest, then compared with
//! the stored token in constant time (`subtle`), so neither the lookup nor
//! the comparison tells an attacker how much of a guess was right.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use subtle::ConstantTimeEq;

use crate::config::GatewayConfig;

/// What a reader may see: globs over check names and agent ids. An empty
/// list allows everything on that axis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The reader's name (for logs and metrics).
    pub name: String,
    checks: Vec<String>,
    agents: Vec<String>,
}

impl Scope {
    /// A scope from glob lists.
    pub fn new(name: impl Into<String>, checks: Vec<String>, agents: Vec<String>) -> Self {
        // A list with a glob of only `*` matches every name: the same as
        // no list, so such a reader shares whole batches unfiltered.
        let unless_all = |globs: Vec<String>| {
            let all = globs
                .iter()
                .any(|g| !g.is_empty() && g.bytes().all(|c| c == b'*'));
            if all { Vec::new() } else { globs }
        };
        Scope {
            name: name.into(),
            checks: unless_all(checks),
            agents: unless_all(agents),
        }
    }

    /// Whether this scope lets everything through (no filtering needed).
    pub fn is_everything(&self) -> bool {
        self.checks.is_empty() && self.agents.is_empty()
    }

    /// Whether a record of `check` from `agent` is visible.
    pub fn allows(&self, agent: &str, check: &str) -> bool {
        self.allows_check(check) && self.allows_agent(agent)
    }

    /// Whether records of `check` are visible from some agent.
    pub fn allows_check(&self, check: &str) -> bool {
        any_glob(&self.checks, check)
    }

    /// Whether records of some check from `agent` are visible.
    pub fn allows_agent(&self, agent: &str) -> bool {
        any_glob(&self.agents, agent)
    }

    /// Whether only some checks are visible.
    pub fn limits_checks(&self) -> bool {
        !self.checks.is_empty()
    }

    /// Whether only some agents' records are visible.
    pub fn limits_agents(&self) -> bool {
        !self.agents.is_empty()
    }
}

/// No globs (everything), or one of them matches `text`.
fn any_glob(globs: &[String], text: &str) -> bool {
    globs.is_empty() || globs.iter().any(|g| glob_match(g, text))
}

/// `*` matches any run of characters, `?` one character; nothing else is
/// special. Iterative, with one backtrack point, so linear in practice.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whom a valid token belongs to.
#[derive(Debug, Clone)]
pub enum Principal {
    /// An agent; its frames must carry this id.
    Agent(Arc<str>),
    /// A reader and its scope.
    Reader(Arc<Scope>),
    /// An operator (`[[admin]]`), by name: the admin endpoints only.
    Admin(Arc<str>),
}

/// A reader whose credential was accepted: what it may see, and until when.
#[derive(Debug, Clone)]
pub struct Reader {
    /// The checks and agents it may see.
    pub scope: Arc<Scope>,
    /// When its credential stops being valid (an OIDC token's `exp`);
    /// `None` for a static token. A stream ends there.
    pub expires: Option<SystemTime>,
}

#[derive(Debug)]
struct Entry {
    token: Box<[u8]>,
    principal: Principal,
}

/// Every configured token, by digest.
#[derive(Debug, Default)]
pub struct Tokens {
    by_digest: HashMap<[u8; 32], Entry>,
}

fn digest(token: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Tokens {
    /// The tokens of a configuration.
    pub fn from_config(cfg: &GatewayConfig) -> Self {
        let mut tokens = Tokens::default();
        for a in &cfg.agents {
            tokens.insert(a.token.expose(), Principal::Agent(Arc::from(a.id.as_str())));
        }
        for r in &cfg.reader_tokens {
            let scope = Scope::new(r.name.clone(), r.checks.clone(), r.agents.clone());
            tokens.insert(r.token.expose(), Principal::Reader(Arc::new(scope)));
        }
        for a in &cfg.admins {
            tokens.insert(
                a.token.expose(),
                Principal::Admin(Arc::from(a.name.as_str())),
            );
        }
        tokens
    }

    fn insert(&mut self, token: &str, principal: Principal) {
        let entry = Entry {
            token: token.as_bytes().into(),
            principal,
        };
        self.by_digest.insert(digest(token.as_bytes()), entry);
    }

    /// The principal a presented token belongs to, if any.
    pub fn authenticate(&self, presented: &[u8]) -> Option<&Principal> {
        let entry = self.by_digest.get(&digest(presented))?;
        bool::from(entry.token.ct_eq(presented)).then_some(&entry.principal)
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: &[u8]) -> Option<&[u8]> {
    let rest = header.strip_prefix(b"Bearer ")?;
    let rest = rest.trim_ascii();
    (!rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("api-*", "api-health"));
        assert!(glob_match("api-*", "api-"));
        assert!(!glob_match("api-*", "web-api-x"));
        assert!(glob_match("*-home", "web-home"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
        assert!(!glob_match("*a*b", "xxaxxbxxc"));
        assert!(glob_match("web-home", "web-home"));
        assert!(!glob_match("web-home", "web-homer"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn scope_needs_both_axes() {
        let s = Scope::new("r", vec!["api-*".into()], vec!["eu-*".into()]);
        assert!(s.allows("eu-1", "api-x"));
        assert!(!s.allows("us-1", "api-x"));
        assert!(!s.allows("eu-1", "web"));
        assert!(Scope::default().allows("any", "thing"));
        assert!(Scope::new("r", vec![], vec!["eu-*".into()]).allows("eu-2", "web"));
    }

    #[test]
    fn a_star_glob_scope_is_everything() {
        let all = Scope::new("r", vec!["api-*".into(), "*".into()], vec!["**".into()]);
        assert!(all.is_everything());
        assert!(all.allows("any", "thing"));
        let some = Scope::new("r", vec!["*-x".into()], vec![]);
        assert!(!some.is_everything());
        assert!(!some.allows("a", "web"));
        assert!(!Scope::new("r", vec!["".into()], vec![]).is_everything());
    }

    #[test]
    fn tokens_authenticate_exactly() {
        let mut t = Tokens::default();
        t.insert("s3cret", Principal::Agent(Arc::from("a")));
        assert!(matches!(t.authenticate(b"s3cret"), Some(Principal::Agent(id)) if &**id == "a"));
        assert!(t.authenticate(b"s3cre").is_none());
        assert!(t.authenticate(b"s3cret ").is_none());
        assert!(t.authenticate(b"").is_none());
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
    }
}
