//! Single sign-on with OpenID Connect providers (`[auth.oidc.NAME]`): discovery, the
//! authorization code flow with PKCE, a state and a nonce, the ID token's signature and claims
//! checked against the provider's published keys, and identities linked by (issuer, subject).
//!
//! A sign-in starts with [`Accounts::sso_start`], which keeps the attempt server-side (by the
//! hash of its state, with its nonce and PKCE verifier) and gives the browser the provider's URL
//! and the state to hold in a cookie; [`Accounts::sso_finish`] takes the attempt once, checks the
//! callback came back to the browser that started it, trades the code, checks the ID token, and
//! signs in, opens an account, or links the identity. An identity is attached to an existing
//! account by its address only where the operator opted in for that provider (`link_by_email`,
//! perhaps limited to `allowed_domains`), the provider says the address is verified, the
//! account's own address is verified too, and the account is neither an admin nor one of
//! lariat's own; otherwise the owner signs in with the password and links from the account page
//! (which an unverified account cannot do). The HTTP client never follows redirects.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, SubjectIdentifier, TokenResponse,
};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Mutex;

use super::{Accounts, Client, NewUser, Principal, Role, TokenPair, User, normalize_email};
use crate::audit::AuditEvent;
use crate::config::{AuthConfig, OidcProviderConfig};
use crate::store::{SsoState, Unlinked};
use base::error::{Error, Result};
use base::types::{content_hash, now_ms};

/// What an account without a password has in place of a hash (never a valid argon2 hash).
pub(super) const NO_PASSWORD_HASH: &str = "!sso";
/// Discovery (and the provider's keys) is fetched again after this long.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// An ID token that fails its signature check fetches the keys again, at most this often.
const KEYS_REFETCH_AFTER: Duration = Duration::from_secs(60);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// An account at an OpenID provider, linked to a Lariat account.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Identity {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    /// The configured provider's name.
    pub provider: String,
    pub issuer: String,
    /// The provider's stable identifier for the user.
    pub subject: String,
    /// The address the provider gave at the last sign-in.
    pub email: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A provider users may sign in with, as the sign-in page shows it.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct SsoProvider {
    pub name: String,
    pub display_name: String,
}

/// A started sign-in: send the browser to `authorize_url`, and have it hold `state` (a cookie)
/// until the provider sends it back.
#[derive(Debug, Clone)]
pub struct SsoStart {
    pub authorize_url: String,
    pub state: String,
}

/// What the provider's redirect brought back (its query parameters).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SsoCallback {
    pub code: Option<String>,
    pub state: Option<String>,
    /// RFC 9207: the issuer that answered, checked when present.
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// How a finished single sign-on ended.
#[derive(Debug)]
pub enum SsoOutcome {
    /// A session was opened (for an account that may have been opened just now).
    SignedIn { tokens: TokenPair, next: String },
    /// The identity is now linked to the signed-in user's account.
    Linked { provider: String, next: String },
}

type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct Discovered {
    metadata: CoreProviderMetadata,
    fetched: Instant,
}

struct Provider {
    name: String,
    display_name: String,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    scopes: Vec<String>,
    redirect: RedirectUrl,
    discovered: Mutex<Option<Discovered>>,
    link_by_email: bool,
    allowed_domains: Vec<String>,
}

/// The configured providers and the HTTP client that talks to them.
pub(super) struct Providers {
    by_name: BTreeMap<String, Provider>,
    http: oauth2_reqwest::ReqwestClient,
    state_ttl_ms: i64,
}

impl Providers {
    pub(super) fn new(config: &AuthConfig, public_url: &str) -> Result<Self> {
        let base = public_url.trim_end_matches('/');
        let by_name = config
            .oidc
            .iter()
            .map(|(name, c)| Ok((name.clone(), Provider::new(name, c, base)?)))
            .collect::<Result<_>>()?;
        let http = reqwest::Client::builder()
            // following a redirect would let a provider's answer point the server anywhere
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| Error::Internal(format!("an HTTP client for sign-on: {e}")))?;
        Ok(Self {
            by_name,
            http: http.into(),
            state_ttl_ms: (config.oidc_state_ttl_secs as i64) * 1000,
        })
    }

    fn get(&self, name: &str) -> Result<&Provider> {
        self.by_name
            .get(name)
            .ok_or_else(|| Error::NotFound(format!("no sign-in provider {name:?}")))
    }
}

impl Provider {
    fn new(name: &str, c: &OidcProviderConfig, base: &str) -> Result<Self> {
        let bad = |e: String| Error::InvalidInput(format!("auth.oidc.{name}: {e}"));
        let issuer = IssuerUrl::new(c.issuer().unwrap_or_default().to_owned())
            .map_err(|e| bad(format!("issuer: {e}")))?;
        let redirect = RedirectUrl::new(format!("{base}/auth/oidc/{name}/callback"))
            .map_err(|e| bad(format!("mail.public_url makes no callback URL: {e}")))?;
        Ok(Self {
            name: name.to_owned(),
            display_name: c.display_name(name),
            issuer,
            client_id: ClientId::new(c.client_id.trim().to_owned()),
            client_secret: c
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_owned())),
            scopes: c.scopes(),
            redirect,
            discovered: Mutex::new(None),
            link_by_email: c.link_by_email,
            allowed_domains: c
                .allowed_domains
                .iter()
                .map(|d| d.trim().to_lowercase())
                .collect(),
        })
    }

    /// Whether a first sign-in with this (verified) address may join `user`, the existing
    /// account with it: only where the operator opted in for this provider (and its domains),
    /// never for an admin or one of lariat's own accounts, and only when the account's own
    /// address is verified.
    fn may_link_by_email(&self, user: &User) -> bool {
        let domain = user.email.rsplit('@').next().unwrap_or_default();
        self.link_by_email
            && (self.allowed_domains.is_empty() || self.allowed_domains.iter().any(|d| d == domain))
            && user.role != Role::Admin
            && !super::is_reserved(&user.email)
            && user.email_verified
    }

    /// The provider's metadata and keys, fetched when missing or stale (or, with `refetch`,
    /// when older than a minute: a key the token names may be new).
    async fn client(
        &self,
        http: &oauth2_reqwest::ReqwestClient,
        refetch: bool,
    ) -> Result<OidcClient> {
        let mut discovered = self.discovered.lock().await;
        let stale = discovered.as_ref().is_none_or(|d| {
            let age = d.fetched.elapsed();
            age > METADATA_TTL || (refetch && age > KEYS_REFETCH_AFTER)
        });
        if stale {
            let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), http)
                .await
                .map_err(|e| {
                    Error::Upstream(format!(
                        "{} could not be reached for sign-in: {}",
                        self.display_name,
                        chain(&e)
                    ))
                })?;
            *discovered = Some(Discovered {
                metadata,
                fetched: Instant::now(),
            });
        }
        let metadata = discovered
            .as_ref()
            .map(|d| d.metadata.clone())
            .expect("fetched above");
        Ok(CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            self.client_secret.clone(),
        )
        .set_redirect_uri(self.redirect.clone()))
    }
}

/// An error and its sources, for messages.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// At most 200 printable characters of something a provider sent.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Who the provider says signed in.
struct Claimed {
    subject: String,
    email: Option<String>,
    email_verified: bool,
}

fn start_again(why: &str) -> Error {
    Error::InvalidInput(format!("{why}: start signing in again"))
}

impl Accounts {
    /// The providers users may sign in with, for the sign-in buttons.
    pub fn sso_providers(&self) -> Vec<SsoProvider> {
        self.sso
            .by_name
            .values()
            .map(|p| SsoProvider {
                name: p.name.clone(),
                display_name: p.display_name.clone(),
            })
            .collect()
    }

    /// The providers' origins (where a sign-in button's redirect goes).
    pub fn sso_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = self
            .sso
            .by_name
            .values()
            .map(|p| p.issuer.url().origin().ascii_serialization())
            .collect();
        origins.sort();
        origins.dedup();
        origins
    }

    /// Starts a sign-in at `provider` (or, with `linking`, the signed-in user's linking of an
    /// identity there); afterwards the browser goes to `next`, a local path.
    pub async fn sso_start(
        &self,
        provider: &str,
        linking: Option<&Principal>,
        next: &str,
        address: Option<IpAddr>,
    ) -> Result<SsoStart> {
        if let Some(ip) = address {
            self.signin_by_address.check_address(ip).await?;
        }
        let p = self.sso.get(provider)?;
        if let Some(principal) = linking {
            principal.require_session()?;
            principal.require_verified("linking a sign-in provider")?;
        }
        let client = p.client(&self.sso.http, false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in p.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let now = now_ms();
        self.identity_store
            .save_sso_state(&SsoState {
                state_hash: content_hash(state.secret().as_bytes()),
                provider: p.name.clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                user_id: linking.map(|l| l.user.id.clone()),
                next_path: next.to_owned(),
                created_at: now,
                expires_at: now + self.sso.state_ttl_ms,
            })
            .await?;
        Ok(SsoStart {
            authorize_url: url.to_string(),
            state: state.secret().clone(),
        })
    }

    /// Finishes a sign-in the provider sent back. `browser_state` is the state the browser kept
    /// when it started; `viewer` is who the browser is signed in as (for a link).
    pub async fn sso_finish(
        &self,
        provider: &str,
        callback: &SsoCallback,
        browser_state: Option<&str>,
        viewer: Option<&Principal>,
        client: &Client,
    ) -> Result<SsoOutcome> {
        // no limit of its own: each callback spends an attempt `sso_start` counted
        let p = self.sso.get(provider)?;
        let state = callback
            .state
            .as_deref()
            .ok_or_else(|| start_again("the provider sent no state back"))?;
        // taken before anything else is checked: whatever happens next, this attempt is spent
        let started = self
            .identity_store
            .take_sso_state(&content_hash(state.as_bytes()))
            .await?
            .ok_or_else(|| start_again("this sign-in is unknown or was already used"))?;
        if browser_state.is_none_or(|b| !constant_time_eq(b.as_bytes(), state.as_bytes())) {
            return Err(start_again("this sign-in was not started in this browser"));
        }
        if started.provider != p.name {
            return Err(start_again(
                "this sign-in was started with another provider",
            ));
        }
        if started.expires_at <= now_ms() {
            return Err(start_again("this sign-in took too long"));
        }
        if let Some(error) = &callback.error {
            let detail = callback
                .error_description
                .as_deref()
                .map(|d| format!(" ({})", printable(d)))
                .unwrap_or_default();
            return Err(Error::Unauthorized(format!(
                "{} did not sign you in: {}{detail}",
                p.display_name,
                printable(error)
            )));
        }
        if let Some(iss) = &callback.iss
            && iss.as_str() != p.issuer.as_str()
        {
            return Err(start_again("the answer came from another issuer"));
        }
        let code = callback
            .code
            .as_deref()
            .ok_or_else(|| start_again("the provider sent no code back"))?;
        let claimed = self.redeem(p, code, &started).await?;
        match &started.user_id {
            Some(user_id) => {
                self.link(p, &claimed, user_id, viewer, started.next_path)
                    .await
            }
            None => {
                self.sign_in_with(p, &claimed, client, started.next_path)
                    .await
            }
        }
    }

    /// Trades the code (with the PKCE verifier) for tokens and checks the ID token: signature
    /// by the provider's keys, issuer, audience, expiry and the nonce of this attempt. The
    /// address comes from the ID token or, when it holds none, from the user info endpoint.
    async fn redeem(&self, p: &Provider, code: &str, started: &SsoState) -> Result<Claimed> {
        let client = p.client(&self.sso.http, false).await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| Error::Upstream(format!("{}: {}", p.display_name, chain(&e))))?
            .set_pkce_verifier(PkceCodeVerifier::new(started.pkce_verifier.clone()))
            .request_async(&self.sso.http)
            .await
            .map_err(|e| {
                Error::Unauthorized(format!(
                    "{} did not accept the sign-in: {}",
                    p.display_name,
                    printable(&chain(&e))
                ))
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| Error::Upstream(format!("{} sent no ID token", p.display_name)))?;
        let nonce = Nonce::new(started.nonce.clone());
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(claims) => claims.clone(),
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                // the provider may have rotated its keys since they were fetched
                let fresh = p.client(&self.sso.http, true).await?;
                id_token
                    .claims(&fresh.id_token_verifier(), &nonce)
                    .map_err(|e| rejected_token(p, &e))?
                    .clone()
            }
            Err(e) => return Err(rejected_token(p, &e)),
        };
        let subject = claims.subject().to_string();
        let (email, email_verified) = match claims.email() {
            Some(email) => (Some(email.to_string()), claims.email_verified()),
            None => {
                let info: CoreUserInfoClaims = client
                    .user_info(
                        AccessToken::new(tokens.access_token().secret().clone()),
                        Some(SubjectIdentifier::new(subject.clone())),
                    )
                    .map_err(|e| Error::Upstream(format!("{}: {}", p.display_name, chain(&e))))?
                    .request_async(&self.sso.http)
                    .await
                    .map_err(|e| {
                        Error::Upstream(format!(
                            "{}'s user info could not be read: {}",
                            p.display_name,
                            printable(&chain(&e))
                        ))
                    })?;
                (info.email().map(|e| e.to_string()), info.email_verified())
            }
        };
        Ok(Claimed {
            subject,
            email,
            email_verified: email_verified == Some(true),
        })
    }

    /// Signs in the account the identity is linked to; or links it to the account with its
    /// verified address (both sides verified); or opens an account for a verified address, as
    /// the sign-up policy allows.
    async fn sign_in_with(
        &self,
        p: &Provider,
        claimed: &Claimed,
        client: &Client,
        next: String,
    ) -> Result<SsoOutcome> {
        let issuer = p.issuer.as_str();
        let email = claimed
            .email
            .as_deref()
            .map(normalize_email)
            .transpose()
            .ok()
            .flatten();
        let detail = json!({"method": "oidc", "provider": p.name, "user_agent": client.user_agent});
        let user = if let Some(identity) = self
            .identity_store
            .identity(issuer, &claimed.subject)
            .await?
        {
            let user = self.reloaded(&identity.user_id).await?;
            self.identity_store
                .touch_identity(&identity.id, email.as_deref().unwrap_or_default(), now_ms())
                .await?;
            user
        } else {
            let Some(email) = email.filter(|_| claimed.email_verified) else {
                return Err(Error::Forbidden(format!(
                    "{} did not confirm an e-mail address for you, so no account can be matched \
                     or opened with it: sign in with your password and link {} from your \
                     account page, or sign up with a password",
                    p.display_name, p.display_name
                )));
            };
            match self.store.user_credentials(&email).await? {
                Some((user, _)) if !user.disabled && p.may_link_by_email(&user) => {
                    let identity = self.new_identity(p, claimed, &user.id, &email);
                    self.identity_store.link_identity(&identity).await?;
                    self.record(
                        AuditEvent::IdentityLinked,
                        Some(&user.id),
                        &user.id,
                        client.address,
                        json!({"provider": p.name, "by": "verified e-mail address"}),
                    )
                    .await?;
                    user
                }
                Some((user, _)) if !user.disabled => {
                    return Err(Error::Conflict(format!(
                        "an account for {email} exists: sign in with your password and link {} \
                         from your account page",
                        p.display_name
                    )));
                }
                Some((user, _)) => user,
                None => self.open_sso_account(p, claimed, &email, client).await?,
            }
        };
        if user.disabled {
            self.audit
                .record(
                    AuditEvent::SignInFailed,
                    None,
                    Some(&user.id),
                    client.address,
                    json!({"reason": "disabled", "method": "oidc", "provider": p.name}),
                )
                .await?;
            return Err(Error::Unauthorized("this account is disabled".into()));
        }
        let tokens = self.signed_in(&user, client, detail).await?;
        Ok(SsoOutcome::SignedIn { tokens, next })
    }

    /// An account for a verified address the provider gave, its first identity linked.
    async fn open_sso_account(
        &self,
        p: &Provider,
        claimed: &Claimed,
        email: &str,
        client: &Client,
    ) -> Result<User> {
        self.check_signup(email, client.address).await?;
        super::check_not_reserved(email)?;
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            email: email.to_owned(),
            email_verified: true,
            role: Role::User,
            plan: self.config.default_plan.clone(),
            disabled: false,
            created_at: now_ms(),
        };
        let identity = self.new_identity(p, claimed, &user.id, email);
        self.identity_store
            .create_user_with_identity(
                &NewUser {
                    user: user.clone(),
                    password_hash: NO_PASSWORD_HASH.into(),
                },
                &identity,
            )
            .await?;
        self.record(
            AuditEvent::SignedUp,
            Some(&user.id),
            &user.id,
            client.address,
            json!({"method": "oidc", "provider": p.name}),
        )
        .await?;
        self.record(
            AuditEvent::IdentityLinked,
            Some(&user.id),
            &user.id,
            client.address,
            json!({"provider": p.name, "by": "sign-up"}),
        )
        .await?;
        Ok(user)
    }

    /// Links the identity to the account that started linking, if the browser is still signed
    /// in as it.
    async fn link(
        &self,
        p: &Provider,
        claimed: &Claimed,
        user_id: &str,
        viewer: Option<&Principal>,
        next: String,
    ) -> Result<SsoOutcome> {
        let Some(viewer) = viewer.filter(|v| v.user.id == user_id) else {
            return Err(Error::Unauthorized(
                "sign in to the account you were linking, then link again".into(),
            ));
        };
        viewer.require_verified("linking a sign-in provider")?;
        match self
            .identity_store
            .identity(p.issuer.as_str(), &claimed.subject)
            .await?
        {
            Some(identity) if identity.user_id == user_id => {}
            Some(_) => {
                return Err(Error::Conflict(format!(
                    "this {} account is already linked to another Lariat account",
                    p.display_name
                )));
            }
            None => {
                let email = claimed.email.as_deref().unwrap_or_default();
                let identity = self.new_identity(p, claimed, user_id, email);
                self.identity_store.link_identity(&identity).await?;
                self.record_by(
                    viewer,
                    AuditEvent::IdentityLinked,
                    json!({"provider": p.name, "by": "account page"}),
                )
                .await?;
            }
        }
        Ok(SsoOutcome::Linked {
            provider: p.display_name.clone(),
            next,
        })
    }

    fn new_identity(
        &self,
        p: &Provider,
        claimed: &Claimed,
        user_id: &str,
        email: &str,
    ) -> Identity {
        let now = now_ms();
        Identity {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
            provider: p.name.clone(),
            issuer: p.issuer.as_str().to_owned(),
            subject: claimed.subject.clone(),
            email: printable(email),
            created_at: now,
            last_used_at: Some(now),
        }
    }

    /// The caller's linked identities, oldest first.
    pub async fn identities(&self, principal: &Principal) -> Result<Vec<Identity>> {
        principal.require_session()?;
        self.identity_store.identities(&principal.user.id).await
    }

    /// Unlinks one of the caller's identities, unless it is their last way to sign in.
    pub async fn unlink_identity(&self, principal: &Principal, id: &str) -> Result<()> {
        principal.require_session()?;
        let provider = self
            .identity_store
            .identities(&principal.user.id)
            .await?
            .into_iter()
            .find(|i| i.id == id)
            .map(|i| i.provider);
        match self
            .identity_store
            .unlink_identity(&principal.user.id, id)
            .await?
        {
            Unlinked::Done => {
                self.record_by(
                    principal,
                    AuditEvent::IdentityUnlinked,
                    json!({"provider": provider}),
                )
                .await
            }
            Unlinked::NotFound => Err(Error::NotFound(format!("no linked sign-in {id}"))),
            Unlinked::LastWayIn => Err(Error::Conflict(
                "this is your only way to sign in: set a password (with a reset link) or link \
                 another provider first"
                    .into(),
            )),
        }
    }

    /// Whether the caller's account has a password (an account opened by single sign-on has
    /// none until its owner sets one with a reset link).
    pub async fn has_password(&self, principal: &Principal) -> Result<bool> {
        Ok(self
            .store
            .user_credentials(&principal.user.email)
            .await?
            .is_some_and(|(_, hash)| super::is_password_hash(&hash)))
    }

    /// The re-authentication before an erasure: the password, or, for an account without one,
    /// a session signed in (through the provider) within `auth.reauth_window_secs`.
    pub async fn reauthenticate(
        &self,
        principal: &Principal,
        password: Option<&str>,
    ) -> Result<()> {
        principal.require_session()?;
        if self.has_password(principal).await? {
            return self
                .check_current_password(principal, password.unwrap_or_default())
                .await;
        }
        let window = (self.config.reauth_window_secs as i64) * 1000;
        let recent = self
            .store
            .sessions(&principal.user.id)
            .await?
            .into_iter()
            .find(|s| principal.session_id.as_deref() == Some(s.id.as_str()))
            .is_some_and(|s| now_ms() - s.created_at <= window);
        if recent {
            Ok(())
        } else {
            Err(Error::Unauthorized(format!(
                "sign in again with your provider to confirm, then try again within {} minutes",
                self.config.reauth_window_secs / 60
            )))
        }
    }
}

fn rejected_token(p: &Provider, e: &openidconnect::ClaimsVerificationError) -> Error {
    Error::Unauthorized(format!(
        "{}'s ID token failed its checks: {}",
        p.display_name,
        printable(&chain(e))
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// OpenID identities linked to accounts, and single sign-ons in progress.
#[async_trait::async_trait]
pub trait IdentityStore: Send + Sync {
    /// Keeps a started sign-in (dropping expired ones on the way).
    async fn save_sso_state(&self, state: &SsoState) -> Result<()>;
    /// Removes and returns the sign-in started with this state: it can be taken once.
    async fn take_sso_state(&self, state_hash: &str) -> Result<Option<SsoState>>;
    async fn identity(&self, issuer: &str, subject: &str) -> Result<Option<Identity>>;
    /// The user's identities, oldest first.
    async fn identities(&self, user_id: &str) -> Result<Vec<Identity>>;
    /// A conflict when this (issuer, subject) is linked already. Spends the user's outstanding
    /// reset and address-change links, as unlinking does.
    async fn link_identity(&self, identity: &Identity) -> Result<()>;
    /// Opens an account and links its first identity, both or neither.
    async fn create_user_with_identity(&self, user: &NewUser, identity: &Identity) -> Result<()>;
    /// Records a sign-in with the identity, and the address the provider gave this time.
    async fn touch_identity(&self, id: &str, email: &str, at: i64) -> Result<()>;
    /// Unlinks the identity unless it is the account's last way to sign in, atomically.
    async fn unlink_identity(&self, user_id: &str, id: &str) -> Result<Unlinked>;
}
