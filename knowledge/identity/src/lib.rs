//! Identity: accounts with passwords, sessions and API keys, single sign-on, the mail that proves
//! an address or resets a password, and the audit log of security events. It makes the
//! [`base::principal::Principal`] every other concern checks.
//!
//! May use: `base`. Owns its rows ([`store`]: users, sessions, tokens, identities, audit, the
//! outbox) and its settings ([`config`]: `[auth]`, `[mail]`). Must never know: collections,
//! chat, billing or any transport.

pub mod accounts;
pub mod audit;
pub mod config;
pub mod mail;
mod sql_accounts;
mod sql_audit;
mod sql_identity;
mod sql_mail;
pub mod store;
