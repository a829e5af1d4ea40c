//! Reading a page through the layout's selectors: rows of fields, each field an element's text
//! or attribute, capped, and required unless the layout says optional. An error names what the
//! page lacks: the page no longer looks like the layout says.

use std::collections::BTreeMap;

use scraper::{ElementRef, Html, Selector};

use super::layout::{Field, Rows};

/// A selector of the layout (each was checked when the layout was loaded).
pub fn selector(s: &str) -> Result<Selector, String> {
    Selector::parse(s).map_err(|e| format!("selector {s:?}: {e}"))
}

/// The element's text with whitespace collapsed.
pub fn text_of(el: ElementRef<'_>) -> String {
    el.text()
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Scraped text is untrusted and capped at `max` characters.
pub fn cap(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}

/// The rows of a page, `what` naming it in errors.
pub fn rows(
    doc: &Html,
    rows: &Rows,
    max_text: usize,
    what: &str,
) -> Result<Vec<BTreeMap<String, String>>, String> {
    let row = selector(&rows.row)?;
    doc.select(&row)
        .enumerate()
        .map(|(i, el)| fields(el, &rows.fields, max_text, &format!("{what} row {}", i + 1)))
        .collect()
}

/// The fields of one element.
pub fn fields(
    el: ElementRef<'_>,
    fields: &BTreeMap<String, Field>,
    max_text: usize,
    what: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for (name, field) in fields {
        let found = el.select(&selector(field.selector())?).next();
        let raw = found.and_then(|f| match field.attr() {
            Some(a) => f.value().attr(a).map(str::to_owned),
            None => Some(text_of(f)),
        });
        let value = raw
            .as_deref()
            .and_then(|r| field.extract(r))
            .map(|v| cap(v.trim(), max_text))
            .filter(|v| !v.is_empty());
        match value {
            Some(v) => {
                map.insert(name.clone(), v);
            }
            None if field.optional() => {}
            None => {
                return Err(format!("{what} has no `{name}` ({:?})", field.selector()));
            }
        }
    }
    Ok(map)
}
