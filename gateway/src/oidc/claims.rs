//! What a verified token's claims let its bearer see: the scope claim, or
//! the first grant of gateway.toml naming its subject or one of its
//! groups (pure; PROTOCOL.md 3.11).

use serde_json::Value;

use crate::auth::Scope;

/// Whom a `[[oidc.grant]]` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// A token whose `sub` is exactly this.
    Subject(String),
    /// A token whose groups claim holds this.
    Group(String),
}

/// One `[[oidc.grant]]`: whom it names and what they may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The subject or group.
    pub grantee: Grantee,
    /// Globs over check names; empty: every check.
    pub checks: Vec<String>,
    /// Globs over agent ids; empty: every agent.
    pub agents: Vec<String>,
}

/// How an issuer's claims become a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRules {
    /// The claim that holds `{"checks": [...], "agents": [...]}`, if any.
    pub scope_claim: Option<String>,
    /// The claim that lists the subject's groups (default `groups`).
    pub groups_claim: String,
    /// Tried in order when the scope claim is absent.
    pub grants: Vec<Grant>,
}

/// Why verified claims give no scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The scope claim is there but not `{"checks": [strings], "agents": [strings]}`.
    #[error("claim `{0}` is not an object of string lists `checks` and `agents`")]
    BadScopeClaim(String),
    /// Nothing in the token is granted anything.
    #[error("no scope: the token has no `{claim}` claim and no grant names its subject or groups")]
    NoGrant {
        /// The scope claim looked for (or `scope_claim` unset).
        claim: String,
    },
}

impl ScopeRules {
    /// The scope of a token with `claims`, named `name` in logs and metrics.
    pub fn scope(&self, claims: &Value) -> Result<Scope, ScopeError> {
        let name = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or("oidc")
            .to_owned();
        if let Some(claim) = &self.scope_claim
            && let Some(value) = claims.get(claim)
        {
            let bad = || ScopeError::BadScopeClaim(claim.clone());
            let Value::Object(fields) = value else {
                return Err(bad());
            };
            if fields.keys().any(|k| k != "checks" && k != "agents") {
                return Err(bad());
            }
            let list = |key: &str| -> Result<Vec<String>, ScopeError> {
                match fields.get(key) {
                    None => Ok(Vec::new()),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
                        .collect(),
                    Some(_) => Err(bad()),
                }
            };
            return Ok(Scope::new(name, list("checks")?, list("agents")?));
        }
        let subject = claims.get("sub").and_then(Value::as_str);
        let in_groups = |group: &str| match claims.get(&self.groups_claim) {
            Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(group)),
            Some(Value::String(one)) => one == group,
            _ => false,
        };
        let granted = self.grants.iter().find(|g| match &g.grantee {
            Grantee::Subject(s) => subject == Some(s.as_str()),
            Grantee::Group(group) => in_groups(group),
        });
        match granted {
            Some(g) => Ok(Scope::new(name, g.checks.clone(), g.agents.clone())),
            None => Err(ScopeError::NoGrant {
                claim: self
                    .scope_claim
                    .clone()
                    .unwrap_or_else(|| "scope_claim unset".into()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> ScopeRules {
        ScopeRules {
            scope_claim: Some("sonde".into()),
            groups_claim: "groups".into(),
            grants: vec![
                Grant {
                    grantee: Grantee::Subject("alice".into()),
                    checks: vec!["api-*".into()],
                    agents: vec![],
                },
                Grant {
                    grantee: Grantee::Group("sre".into()),
                    checks: vec![],
                    agents: vec!["eu-*".into()],
                },
            ],
        }
    }

    #[test]
    fn the_scope_claim_wins_over_grants() {
        let s = rules()
            .scope(&json!({"sub": "alice", "sonde": {"checks": ["web"]}}))
            .unwrap();
        assert!(s.allows("any", "web"));
        assert!(!s.allows("any", "api-x"));
        assert_eq!(s.name, "alice");
    }

    #[test]
    fn grants_by_subject_then_group_in_order() {
        let r = rules();
        let alice = r
            .scope(&json!({"sub": "alice", "groups": ["sre"]}))
            .unwrap();
        assert!(alice.allows("us-1", "api-x"));
        assert!(!alice.allows("us-1", "web"));
        let bob = r
            .scope(&json!({"sub": "bob", "groups": ["dev", "sre"]}))
            .unwrap();
        assert!(bob.allows("eu-1", "web"));
        assert!(!bob.allows("us-1", "web"));
        let carol = r.scope(&json!({"sub": "carol", "groups": "sre"})).unwrap();
        assert!(carol.allows("eu-2", "x"));
    }

    #[test]
    fn no_claim_and_no_grant_is_refused() {
        let err = rules()
            .scope(&json!({"sub": "mallory", "groups": ["dev"]}))
            .unwrap_err();
        assert!(matches!(err, ScopeError::NoGrant { .. }));
    }

    #[test]
    fn a_malformed_scope_claim_is_refused_not_widened() {
        let r = rules();
        for bad in [
            json!({"sub": "alice", "sonde": "api-*"}),
            json!({"sub": "alice", "sonde": {"checks": "api-*"}}),
            json!({"sub": "alice", "sonde": {"checks": [1]}}),
            json!({"sub": "alice", "sonde": {"check": ["x"]}}),
        ] {
            assert!(
                matches!(r.scope(&bad), Err(ScopeError::BadScopeClaim(_))),
                "{bad}"
            );
        }
    }
}
