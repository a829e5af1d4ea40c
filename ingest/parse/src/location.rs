//! Where in its source a passage is.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where in its source a passage is: a page range for PDFs, a heading path for structured text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<(u32, u32)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headings: Vec<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match self.pages {
            Some((a, b)) if a == b => parts.push(format!("p. {a}")),
            Some((a, b)) => parts.push(format!("pp. {a}-{b}")),
            None => {}
        }
        if !self.headings.is_empty() {
            parts.push(self.headings.join(" > "));
        }
        f.write_str(&parts.join(", "))
    }
}

/// The text a passage is embedded and lexically indexed under: its title and heading path give
/// the chunk its context (a chunk deep in a section rarely repeats the section's subject).
pub fn passage_heading(title: &str, location: &Location) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(location.headings.len() + 1);
    if !title.is_empty() {
        parts.push(title);
    }
    for h in &location.headings {
        if parts.last() != Some(&h.as_str()) {
            parts.push(h);
        }
    }
    parts.join(" > ")
}
