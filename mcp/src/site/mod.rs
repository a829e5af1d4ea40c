//! A domain's external site for agents: [`HttpSite`], the [`SiteAdapter`] over HTTP with a layout
//! from configuration, and [`SiteServer`], the MCP tools over the core's
//! [`knowledge::sites::Site`] (which holds the write protocol).

mod forms;
mod http;
mod server;
mod transport;

pub use parse::site::{layout, robots};

pub use http::HttpSite;
pub use knowledge::sites::{
    DisciplineFee, Entry, EntryRequest, EventDetail, EventQuery, EventSummary, Extra, SentRequest,
    SiteAdapter, Standing, WriteError, WriteOutcome,
};
pub use server::{DOMAINS, SiteServer, open_site};

/// "The page no longer looks like the layout says": the error every scrape gives rather than
/// returning garbage.
pub fn layout_not_understood(what: impl std::fmt::Display) -> knowledge::Error {
    knowledge::Error::Upstream(format!(
        "layout not understood: {what}; the site may have changed its pages (update the site \
         layout file)"
    ))
}
