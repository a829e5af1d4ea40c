//! Scraping: rows and fields read through the layout's selectors (`parse::site::scrape`), list
//! pages followed through their next links (never off the site).

use super::*;

impl HttpSite {
    /// Scraped rows of a page.
    pub(super) fn rows(
        &self,
        doc: &Html,
        rows: &Rows,
        what: &str,
    ) -> Result<Vec<BTreeMap<String, String>>> {
        parse::site::scrape::rows(doc, rows, self.layout.max_text_chars, what)
            .map_err(layout_not_understood)
    }

    pub(super) fn fields(
        &self,
        el: ElementRef<'_>,
        fields: &BTreeMap<String, Field>,
        what: &str,
    ) -> Result<BTreeMap<String, String>> {
        parse::site::scrape::fields(el, fields, self.layout.max_text_chars, what)
            .map_err(layout_not_understood)
    }

    /// A list page, following its next links up to `limit` items or `max_pages` pages.
    pub(super) async fn list(
        &self,
        page: &ListPage,
        args: &[(&str, Option<&str>)],
        limit: usize,
        what: &str,
    ) -> Result<Vec<BTreeMap<String, String>>> {
        let mut url = self.url(&page.path, None)?;
        {
            let mut q = url.query_pairs_mut();
            for (arg, value) in args {
                if let Some(v) = value {
                    let param = page.params.get(*arg).ok_or_else(|| {
                        Error::InvalidInput(format!(
                            "{} cannot filter {what} by {arg} (its layout has no such parameter)",
                            self.layout.name
                        ))
                    })?;
                    q.append_pair(param, v);
                }
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let container = selector(&page.container)?;
        let mut items = Vec::new();
        for _ in 0..page.max_pages.max(1) {
            let fetched = self.page(url.clone(), page.requires_signin).await?;
            let next = {
                let doc = Html::parse_document(&fetched.html);
                if doc.select(&container).next().is_none() {
                    return Err(layout_not_understood(format!(
                        "{what} page {} has no {:?}",
                        fetched.url.path(),
                        page.container
                    )));
                }
                items.extend(self.rows(&doc, &page.rows, what)?);
                match &page.next {
                    Some(n) => doc
                        .select(&selector(n)?)
                        .next()
                        .and_then(|a| a.value().attr("href"))
                        .and_then(|h| fetched.url.join(h).ok()),
                    None => None,
                }
            };
            if items.len() >= limit {
                break;
            }
            match next {
                // never leave the site by following a link
                Some(n) if self.transport.on_site(&n) => url = n,
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }
}
