//! Commerce: plans with their quotas and rate limits, each answer's usage, paid plans through
//! Stripe (checkout, portal, webhooks, invoices) and the usage and revenue reports.
//!
//! May use: `base` and `identity` (the mail that tells a payer what changed). Owns its rows
//! ([`store`]: usage, customers, subscriptions, invoices) and its settings ([`config`]:
//! `[plans]`, `[billing]`). Must never know: retrieval, chat or any transport.

pub mod analytics;
pub mod billing;
pub mod config;
pub mod limits;
mod sql_analytics;
mod sql_billing;
mod sql_usage;
pub mod store;
