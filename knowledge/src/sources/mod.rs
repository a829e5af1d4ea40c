//! Where a collection's documents come from besides files handed to `lariat ingest`: web pages,
//! fetched under guard (`fetch`).

mod fetch;

pub use fetch::{Fetched, Fetcher, Page, Validators};
