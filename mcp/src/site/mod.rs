//! A domain's external site for agents: [`SiteServer`], the MCP tools over the core's
//! [`knowledge::sites::Site`] (which holds the write protocol and the HTTP adapter).

mod server;

pub use knowledge::sites::{Entry, EventDetail, EventQuery, EventSummary, Standing};
pub use server::{DOMAINS, SiteServer};
