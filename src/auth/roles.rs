//! Who may use the gateway and who administers it: [`Roles`] turns a verified
//! [`Identity`] into the request's [`Principal`].

use std::collections::HashSet;
use std::sync::Arc;

use super::{Identity, Source, TokenBasis};
use crate::config::AuthConfig;
use crate::error::RequestError;

/// The identity a request was authenticated as, and what it may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Arc<str>,
    pub groups: Arc<[String]>,
    /// May act as others and see everyone's work.
    pub admin: bool,
    /// What decided the roles, for the audit log: `admin: group livy-admins`,
    /// `allowed: group livy-users`; `None` when nothing but the login did.
    pub grants: Option<String>,
    /// Where the user comes from.
    pub source: Source,
    /// The token the request (or the session it belongs to) was proved with.
    pub token: Option<TokenBasis>,
}

/// Who may use the gateway and who is an administrator: `auth.allowed_groups`
/// (non-empty: only their members, and users from the htpasswd file), and
/// `auth.admins` by name or members of `auth.admin_groups`; a Kerberos user with no
/// directory has no groups). Group names are compared
/// without regard to case, as directories compare them.
pub struct Roles {
    admins: HashSet<String>,
    admin_groups: HashSet<String>,
    allowed_groups: HashSet<String>,
}

impl Roles {
    pub fn new(config: &AuthConfig) -> Self {
        let lower = |groups: &[String]| groups.iter().map(|g| g.to_lowercase()).collect();
        Self {
            admins: config.admins.iter().cloned().collect(),
            admin_groups: lower(&config.admin_groups),
            allowed_groups: lower(&config.allowed_groups),
        }
    }

    /// What `identity` may do, or 403 if it may not use the gateway at all.
    pub fn principal(&self, identity: Identity) -> Result<Principal, RequestError> {
        let member_of = |set: &HashSet<String>| {
            identity
                .groups
                .iter()
                .find(|g| set.contains(&g.to_lowercase()))
                .cloned()
        };
        let mut grants = Vec::new();
        if !self.allowed_groups.is_empty() && identity.source != Source::File {
            match member_of(&self.allowed_groups) {
                Some(group) => grants.push(format!("allowed: group {group}")),
                None => {
                    return Err(RequestError::Forbidden(format!(
                        "user {} is not a member of a group allowed to use this gateway",
                        identity.user
                    )))
                }
            }
        }
        let admin = if self.admins.contains(&*identity.user) {
            grants.push("admin: auth.admins".into());
            true
        } else if let Some(group) = member_of(&self.admin_groups) {
            grants.push(format!("admin: group {group}"));
            true
        } else {
            false
        };
        Ok(Principal {
            user: identity.user,
            groups: identity.groups,
            admin,
            grants: (!grants.is_empty()).then(|| grants.join("; ")),
            source: identity.source,
            token: identity.token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config() -> AuthConfig {
        AuthConfig {
            admins: vec!["root".into()],
            admin_groups: vec!["Livy-Admins".into()],
            cache_ttl: Duration::from_secs(60),
            cache_max_entries: 100,
            max_pending_verifications: 8,
            ..AuthConfig::default()
        }
    }

    #[test]
    fn administrators_by_name_or_by_group() {
        let roles = Roles::new(&config());
        let admin = |identity| roles.principal(identity).unwrap().admin;
        assert!(admin(Identity::new("root", vec![])));
        assert!(!admin(Identity::new("alice", vec![])));
        let member = Identity::from_directory("carol", vec!["livy-admins".into()]);
        assert!(admin(member), "group names ignore case");
        let other = Identity::from_directory("dave", vec!["livy-users".into()]);
        assert!(!admin(other));
    }

    #[test]
    fn only_allowed_groups_get_in_but_file_users_always_do() {
        let roles = Roles::new(&AuthConfig {
            allowed_groups: vec!["livy-users".into()],
            ..config()
        });
        let member = Identity::from_directory("carol", vec!["LIVY-USERS".into()]);
        let principal = roles.principal(member).unwrap();
        assert_eq!(
            principal.grants.as_deref(),
            Some("allowed: group LIVY-USERS")
        );
        let outsider = Identity::from_directory("eve", vec!["staff".into()]);
        assert!(matches!(
            roles.principal(outsider),
            Err(RequestError::Forbidden(_))
        ));
        let service = Identity::new("svc", vec![]);
        assert!(roles.principal(service).is_ok());
        let boss = Identity::from_directory("root", vec!["livy-users".into()]);
        let grants = roles.principal(boss).unwrap().grants.unwrap();
        assert_eq!(grants, "allowed: group livy-users; admin: auth.admins");
    }
}
