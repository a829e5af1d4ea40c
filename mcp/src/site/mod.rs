//! A domain's external site for agents: [`SiteServer`], the MCP tools over the core's
//! [`sites::Site`] (which holds the write protocol and the HTTP adapter).

mod server;

pub use server::{DOMAINS, SiteServer};
pub use sites::{Entry, EventDetail, EventQuery, EventSummary, Standing};
