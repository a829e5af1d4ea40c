//! robots.txt as RFC 9309 reads it: the group for our product token (else `*`), `Allow` and
//! `Disallow` rules with `*` and `$`, the longest matching rule deciding and `Allow` winning ties.

/// `(allow, pattern)`.
type Rule = (bool, String);

#[derive(Debug, Clone, Default)]
pub struct Robots {
    /// (allow, pattern) of the group that applies to us.
    rules: Vec<Rule>,
}

impl Robots {
    /// Everything allowed (no robots.txt, or a 4xx for it).
    pub fn allow_all() -> Self {
        Self::default()
    }

    pub fn parse(text: &str, product: &str) -> Self {
        let product = product.to_ascii_lowercase();
        // groups: (user agents, rules)
        let mut groups: Vec<(Vec<String>, Vec<Rule>)> = Vec::new();
        let mut open_agents = false;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim().to_owned());
            match key.as_str() {
                "user-agent" => {
                    if !open_agents {
                        groups.push((Vec::new(), Vec::new()));
                    }
                    open_agents = true;
                    if let Some(g) = groups.last_mut() {
                        g.0.push(value.to_ascii_lowercase());
                    }
                }
                "allow" | "disallow" => {
                    open_agents = false;
                    if let Some(g) = groups.last_mut()
                        && !value.is_empty()
                    {
                        g.1.push((key == "allow", value));
                    }
                }
                _ => {}
            }
        }
        let ours: Vec<Rule> = groups
            .iter()
            .filter(|(agents, _)| agents.iter().any(|a| a != "*" && product.starts_with(a)))
            .flat_map(|(_, rules)| rules.clone())
            .collect();
        let rules = if ours.is_empty() {
            groups
                .into_iter()
                .filter(|(agents, _)| agents.iter().any(|a| a == "*"))
                .flat_map(|(_, rules)| rules)
                .collect()
        } else {
            ours
        };
        Self { rules }
    }

    /// Whether `path` (with its query) may be fetched.
    pub fn allows(&self, path: &str) -> bool {
        let mut best: Option<(usize, bool)> = None;
        for (allow, pattern) in &self.rules {
            if matches(pattern, path) {
                let len = pattern.len();
                best = match best {
                    Some((l, a)) if l > len || (l == len && a) => Some((l, a)),
                    _ => Some((len, *allow)),
                };
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

/// Whether a rule pattern (`*` any run, `$` end) matches the start of `path`.
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let Some(first) = parts.first() else {
        return true;
    };
    if !path.starts_with(first) {
        return false;
    }
    let mut at = first.len();
    for (i, part) in parts.iter().enumerate().skip(1) {
        let last = i == parts.len() - 1;
        if last && anchored {
            return path.len() >= at + part.len() && path[at..].ends_with(part);
        }
        match path[at..].find(part) {
            Some(p) => at += p + part.len(),
            None => return false,
        }
    }
    !anchored || parts.len() > 1 || at == path.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_match_decides_and_groups_apply() {
        let r = Robots::parse(
            "User-agent: *\nDisallow: /members/\nAllow: /members/public\n\n\
             User-agent: OtherBot\nDisallow: /\n",
            "LariatBot",
        );
        assert!(r.allows("/events"));
        assert!(!r.allows("/members/entries"));
        assert!(r.allows("/members/public/x"));
        let ours = Robots::parse(
            "User-agent: *\nDisallow: /\n\nUser-agent: lariatbot\nDisallow: /standings\n",
            "LariatBot",
        );
        assert!(ours.allows("/events"));
        assert!(!ours.allows("/standings?discipline=x"));
    }

    #[test]
    fn wildcards_and_anchors() {
        let r = Robots::parse("User-agent: *\nDisallow: /*.pdf$\nDisallow: /a*b\n", "x");
        assert!(!r.allows("/files/rules.pdf"));
        assert!(r.allows("/files/rules.pdf?x=1"));
        assert!(!r.allows("/a-to-b"));
        assert!(r.allows("/a-to-c"));
        assert!(Robots::parse("", "x").allows("/anything"));
        let empty_disallow = Robots::parse("User-agent: *\nDisallow:\n", "x");
        assert!(empty_disallow.allows("/x"));
    }
}
