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

impl Location {
    /// The location as shown after its document's title ("Team roping · Ropes > Head ropes"):
    /// without a first heading that repeats the title.
    pub fn below(&self, title: &str) -> String {
        let repeats = self
            .headings
            .first()
            .is_some_and(|h| h.trim().eq_ignore_ascii_case(title.trim()));
        Location {
            pages: self.pages,
            headings: self.headings[usize::from(repeats)..].to_vec(),
        }
        .to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_below_its_title_does_not_repeat_it() {
        let l = Location {
            pages: Some((2, 3)),
            headings: vec![
                "Team roping: heading and heeling".into(),
                "Ropes and rope lengths".into(),
                "Head ropes".into(),
            ],
        };
        assert_eq!(
            l.below(" team roping: Heading and heeling"),
            "pp. 2-3, Ropes and rope lengths > Head ropes"
        );
        assert_eq!(
            l.below("Another title"),
            "pp. 2-3, Team roping: heading and heeling > Ropes and rope lengths > Head ropes"
        );
        let only = Location {
            pages: None,
            headings: vec!["Rules".into()],
        };
        assert_eq!(only.below("Rules"), "");
        assert_eq!(Location::default().below("Rules"), "");
    }
}
