//! What an external site looks like, as configuration: paths, query parameters, forms and CSS
//! selectors, read from a TOML file (deploy/domains/rodeo/sites/). A new site or a changed page
//! is a change to that file, not to code. Every selector is checked when the file is loaded.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// The site's name, as tool results cite it.
    pub name: String,
    pub base_url: Option<String>,
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Longest text kept from one scraped field.
    #[serde(default = "default_max_text")]
    pub max_text_chars: usize,
    pub signin: SigninLayout,
    /// The event calendar (search results).
    pub events: ListPage,
    /// One event's page; `{id}` in its path.
    pub event: DetailPage,
    pub standings: ListPage,
    /// The signed-in member's entries.
    pub entries: ListPage,
    /// The entry form of an event; `{id}` is the event.
    pub entry_form: FormPage,
    /// The withdrawal form of an entry; `{id}` is the entry.
    pub withdraw_form: FormPage,
}

fn default_user_agent() -> String {
    format!(
        "LariatBot/{} (+https://github.com/lariat)",
        env!("CARGO_PKG_VERSION")
    )
}

fn default_max_text() -> usize {
    500
}

fn default_max_pages() -> usize {
    5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigninLayout {
    /// The page holding the sign-in form.
    pub path: String,
    /// The sign-in form. A member page that shows it instead of its content means "signed out".
    pub form: String,
    pub username_field: String,
    pub password_field: String,
    /// The message a failed sign-in shows.
    pub error: String,
}

/// Rows of a table or list: one element per item, fields found inside it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rows {
    pub row: String,
    pub fields: BTreeMap<String, Field>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListPage {
    pub path: String,
    /// Tool argument → query parameter.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// An element every well-formed page has (the table), even with no rows: its absence means
    /// the page no longer has the configured layout.
    pub container: String,
    #[serde(flatten)]
    pub rows: Rows,
    /// The link to the next page of results.
    pub next: Option<String>,
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
    #[serde(default)]
    pub requires_signin: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailPage {
    pub path: String,
    pub container: String,
    pub fields: BTreeMap<String, Field>,
    /// A list inside the page (an event's disciplines and fees).
    pub list: Option<Rows>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormPage {
    /// The page holding the form.
    pub path: String,
    pub form: String,
    /// Tool argument → form field name. Hidden fields (CSRF tokens) are sent as the page has them.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// What the result page shows on success (the confirmation).
    pub success: Field,
    /// The validation errors the result page shows on refusal.
    pub errors: String,
}

/// Where a value is: a selector (the element's text), or a table with `attr` to read an attribute
/// instead, `pattern` (`/events/{}`) to keep only the part in braces, `optional` for fields some
/// items lack.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Field {
    Selector(String),
    Spec {
        selector: String,
        attr: Option<String>,
        pattern: Option<String>,
        #[serde(default)]
        optional: bool,
    },
}

impl Field {
    pub fn selector(&self) -> &str {
        match self {
            Field::Selector(s) | Field::Spec { selector: s, .. } => s,
        }
    }

    pub fn attr(&self) -> Option<&str> {
        match self {
            Field::Spec { attr, .. } => attr.as_deref(),
            Field::Selector(_) => None,
        }
    }

    pub fn optional(&self) -> bool {
        matches!(self, Field::Spec { optional: true, .. })
    }

    /// The part of `value` the pattern's `{}` stands for (all of it without a pattern).
    pub fn extract<'a>(&self, value: &'a str) -> Option<&'a str> {
        let Field::Spec {
            pattern: Some(p), ..
        } = self
        else {
            return Some(value);
        };
        let (prefix, suffix) = p.split_once("{}")?;
        let start = value.find(prefix)? + prefix.len();
        let rest = &value[start..];
        let end = if suffix.is_empty() {
            rest.find(['?', '#', '/']).unwrap_or(rest.len())
        } else {
            rest.find(suffix)?
        };
        Some(&rest[..end]).filter(|s| !s.is_empty())
    }
}

/// The fields each kind of page must configure: the tools' results are built from them.
const REQUIRED: &[(&str, &[&str])] = &[
    ("events", &["id", "name"]),
    ("event", &["name"]),
    ("standings", &["rank", "name"]),
    ("entries", &["id", "event", "discipline", "status"]),
];

impl Layout {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the site layout {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("site layout {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let layout: Layout = toml::from_str(text).map_err(|e| e.to_string())?;
        layout.check()?;
        Ok(layout)
    }

    /// Every selector parses, every required field is there, paths are site-relative.
    fn check(&self) -> Result<(), String> {
        let mut selectors: Vec<(String, &str)> = vec![
            ("signin.form".into(), &self.signin.form),
            ("signin.error".into(), &self.signin.error),
        ];
        let lists = [
            ("events", &self.events),
            ("standings", &self.standings),
            ("entries", &self.entries),
        ];
        for (name, page) in lists {
            selectors.push((format!("{name}.container"), &page.container));
            selectors.push((format!("{name}.row"), &page.rows.row));
            if let Some(next) = &page.next {
                selectors.push((format!("{name}.next"), next));
            }
            for (field, f) in &page.rows.fields {
                selectors.push((format!("{name}.fields.{field}"), f.selector()));
            }
        }
        selectors.push(("event.container".into(), &self.event.container));
        for (field, f) in &self.event.fields {
            selectors.push((format!("event.fields.{field}"), f.selector()));
        }
        if let Some(list) = &self.event.list {
            selectors.push(("event.list.row".into(), &list.row));
            for (field, f) in &list.fields {
                selectors.push((format!("event.list.fields.{field}"), f.selector()));
            }
        }
        for (name, form) in [
            ("entry_form", &self.entry_form),
            ("withdraw_form", &self.withdraw_form),
        ] {
            selectors.push((format!("{name}.form"), &form.form));
            selectors.push((format!("{name}.errors"), &form.errors));
            selectors.push((format!("{name}.success"), form.success.selector()));
        }
        for (key, selector) in selectors {
            scraper::Selector::parse(selector)
                .map_err(|e| format!("{key}: {selector:?} is not a CSS selector ({e})"))?;
        }
        for (name, required) in REQUIRED {
            let fields = match *name {
                "events" => &self.events.rows.fields,
                "event" => &self.event.fields,
                "standings" => &self.standings.rows.fields,
                _ => &self.entries.rows.fields,
            };
            if let Some(missing) = required.iter().find(|f| !fields.contains_key(**f)) {
                return Err(format!("{name}.fields must configure `{missing}`"));
            }
        }
        if !self.entry_form.fields.contains_key("discipline") {
            return Err("entry_form.fields must map `discipline` to a form field".into());
        }
        let paths = [
            &self.signin.path,
            &self.events.path,
            &self.event.path,
            &self.standings.path,
            &self.entries.path,
            &self.entry_form.path,
            &self.withdraw_form.path,
        ];
        if let Some(p) = paths.iter().find(|p| !p.starts_with('/')) {
            return Err(format!("paths must start with '/': {p:?}"));
        }
        for (name, path) in [
            ("event", &self.event.path),
            ("entry_form", &self.entry_form.path),
            ("withdraw_form", &self.withdraw_form.path),
        ] {
            if !path.contains("{id}") {
                return Err(format!("{name}.path must contain {{id}}: {path:?}"));
            }
        }
        if self.max_text_chars == 0 {
            return Err("max_text_chars must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_layout_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/domains/rodeo/sites/example-association.toml");
        let layout = Layout::load(&path).unwrap();
        assert!(layout.events.rows.fields.contains_key("id"));
    }

    #[test]
    fn bad_layouts_name_the_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/domains/rodeo/sites/example-association.toml");
        let good = std::fs::read_to_string(path).unwrap();
        let bad_selector = good.replacen("row = \"table.events tbody tr\"", "row = \"tr[[\"", 1);
        let e = Layout::parse(&bad_selector).unwrap_err();
        assert!(e.contains("events.row"), "{e}");
        let no_id = good.replacen("path = \"/events/{id}\"", "path = \"/events\"", 1);
        let e = Layout::parse(&no_id).unwrap_err();
        assert!(e.contains("event.path must contain {id}"), "{e}");
        let e = Layout::parse("name = 1").unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn patterns_extract_ids() {
        let f = Field::Spec {
            selector: "a".into(),
            attr: Some("href".into()),
            pattern: Some("/events/{}".into()),
            optional: false,
        };
        assert_eq!(
            f.extract("/events/cheyenne-2026?x=1"),
            Some("cheyenne-2026")
        );
        assert_eq!(f.extract("https://x.org/events/abc"), Some("abc"));
        assert_eq!(f.extract("/other/abc"), None);
        assert_eq!(Field::Selector("a".into()).extract("v"), Some("v"));
    }
}
