//! Who is asking: a user with a role and a plan, and the caller a request authenticated as (a
//! session or an API key with its scopes). Identity makes principals; every concern checks them.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The domain of lariat's own accounts (the local operator's): nobody may sign up with it.
pub const RESERVED_DOMAIN: &str = "lariat.local";

/// What a user may do beyond reading: curators ingest into collections they curate, admins
/// manage users, plans and every collection.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Curator,
    Admin,
}

crate::words!(Role, "role", { User => "user", Curator => "curator", Admin => "admin" });

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    /// Whether the owner proved the address (a mailed link); admins' accounts and accounts from
    /// before verification existed count as verified.
    pub email_verified: bool,
    pub role: Role,
    pub plan: String,
    pub disabled: bool,
    pub created_at: i64,
}

/// What an API key may do. A key does what both its scopes and its owner's role allow; a
/// signed-in session does everything the role allows.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Search and read the collections the owner may read.
    Search,
    /// Ask the assistant; read and manage the owner's conversations.
    Chat,
    /// Act as a curator: ingest into and configure the collections the owner curates, write to
    /// the domain's sites.
    Ingest,
    /// Act as an admin (users, status, audit, every collection).
    Admin,
    /// Create, list and revoke API keys (with at most this key's scopes).
    Keys,
    /// Read the owner's subscription and invoices (with Stripe's hosted invoice links).
    Billing,
}

crate::words!(Scope, "scope", { Search => "search", Chat => "chat", Ingest => "ingest", Admin => "admin", Keys => "keys", Billing => "billing" });

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Search,
        Scope::Chat,
        Scope::Ingest,
        Scope::Admin,
        Scope::Keys,
        Scope::Billing,
    ];
    /// A new key's scopes when none are asked for.
    pub const DEFAULT: [Scope; 2] = [Scope::Search, Scope::Chat];

    /// The least role that may hold this scope.
    pub fn role(self) -> Role {
        match self {
            Scope::Search | Scope::Chat | Scope::Keys | Scope::Billing => Role::User,
            Scope::Ingest => Role::Curator,
            Scope::Admin => Role::Admin,
        }
    }

    /// The scopes a key of a user with this role may have.
    pub fn allowed_for(role: Role) -> Vec<Scope> {
        Scope::ALL
            .into_iter()
            .filter(|s| role >= s.role())
            .collect()
    }

    /// Scopes as stored: comma-separated, in order.
    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Stored scopes back (an unknown name is a corrupt row).
    pub fn split(stored: &str) -> Result<Vec<Scope>> {
        stored
            .split(',')
            .filter(|s| !s.is_empty())
            .map(Scope::parse)
            .collect()
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    /// Set when the caller used an API key rather than a session's access token.
    pub api_key_id: Option<String>,
    pub session_id: Option<String>,
    /// False while the account's address is unverified, when the server lets such accounts
    /// only read (`auth.unverified_can_chat`).
    pub may_chat: bool,
    /// An API key's scopes; `None` for a session (everything the role allows).
    pub scopes: Option<Vec<Scope>>,
    /// Where the request came from, when the transport knows (for the audit log).
    pub address: Option<IpAddr>,
}

impl Principal {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.as_ref().is_none_or(|s| s.contains(&scope))
    }

    /// The role the caller acts with: the user's, capped by an API key's scopes (a key without
    /// `admin` acts at most as a curator, without `ingest` too as a user).
    pub fn role(&self) -> Role {
        if self.has(Scope::Admin) {
            self.user.role
        } else if self.has(Scope::Ingest) {
            self.user.role.min(Role::Curator)
        } else {
            Role::User
        }
    }

    /// Refuses API keys: sessions, passwords, addresses and personal data are managed from a
    /// signed-in session, so a key (possibly leaked) cannot see or end sessions, take the account
    /// over, or take its data out.
    pub fn require_session(&self) -> Result<()> {
        if self.api_key_id.is_some() {
            return Err(Error::Forbidden(
                "this is done from a signed-in session, not with an API key".into(),
            ));
        }
        Ok(())
    }

    /// Refuses an API key without `scope`.
    pub fn require_scope(&self, scope: Scope) -> Result<()> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this API key lacks the {} scope: make a key with it on your account page",
                scope.as_str()
            )))
        }
    }

    /// Refuses to answer a key without the `chat` scope, or an account that must first verify
    /// its address.
    pub fn require_chat(&self) -> Result<()> {
        self.require_scope(Scope::Chat)?;
        if self.may_chat {
            Ok(())
        } else {
            Err(unverified(&self.user, "asking the assistant"))
        }
    }

    /// Refuses an account whose address is not yet proven: until its owner shows up, nothing
    /// made on it (API keys, linked identities) may outlast the owner taking it over.
    pub fn require_verified(&self, what: &str) -> Result<()> {
        if self.user.email_verified {
            Ok(())
        } else {
            Err(unverified(&self.user, what))
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role() == Role::Admin
    }

    /// Whether the caller is the operator at the server's own command line (no session, no
    /// key: nobody can sign in as that account), who may already read the server's files.
    pub fn is_local_operator(&self) -> bool {
        self.session_id.is_none()
            && self.api_key_id.is_none()
            && self.user.role == Role::Admin
            && self.user.email == format!("operator@{RESERVED_DOMAIN}")
    }

    /// Refuses callers below `role` (or whose key's scopes keep them below it).
    pub fn require(&self, role: Role) -> Result<()> {
        if self.role() >= role {
            Ok(())
        } else if self.user.role >= role {
            let scope = if role == Role::Admin {
                Scope::Admin
            } else {
                Scope::Ingest
            };
            self.require_scope(scope)
        } else {
            Err(Error::Forbidden(format!(
                "this needs the {} role; you are a {}",
                role.as_str(),
                self.user.role.as_str()
            )))
        }
    }
}

/// "Confirm your address before …", naming the address and how to get a new link.
fn unverified(user: &User, what: &str) -> Error {
    Error::Forbidden(format!(
        "confirm your e-mail address before {what}: open the link we sent to {} (you can ask \
         for a new one on your account page, or with POST /api/auth/verify/resend)",
        user.email
    ))
}

/// The accounts other concerns may name: a collection's members are chosen from them. Identity
/// keeps them; retrieval asks through this without knowing how accounts are stored.
#[async_trait::async_trait]
pub trait Directory: Send + Sync {
    /// The account with this address, however its owner typed it; not found when none has it.
    async fn user_by_email(&self, email: &str) -> Result<User>;
    /// The account with this id, if there is one.
    async fn user(&self, id: &str) -> Result<Option<User>>;
}
