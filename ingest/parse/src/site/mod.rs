//! External sites' pages: the layout that says what a site looks like (`layout`), its robots.txt
//! (`robots`), its sitemap (`sitemap`), and the page reading through the layout's selectors (`scrape`). Every input here
//! comes from a site or an operator's file, so each is fuzzed.

pub mod layout;
pub mod robots;
pub mod scrape;
pub mod sitemap;
