//! Sitemaps (sitemaps.org): the page addresses a `<urlset>` lists, or the sitemaps a
//! `<sitemapindex>` lists, each with its `<lastmod>` if given. Read by a small scanner rather
//! than an XML parser: only `<loc>` and `<lastmod>` inside `<url>` / `<sitemap>` matter, no DTD or
//! entity beyond the five predefined ones and character references is expanded (so nothing can
//! grow the input), and CDATA sections are read as text. Namespace prefixes are ignored.

/// What a sitemap lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sitemap {
    /// True for a sitemap index (its entries are sitemaps, not pages).
    pub index: bool,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub loc: String,
    pub lastmod: Option<String>,
}

/// Longest address kept; longer ones are skipped (sitemaps.org allows 2,048 characters).
const MAX_LOC: usize = 2048;

/// The local name of a tag that starts at `s` (after `<` or `</`): `ns:loc` → `loc`.
fn local_name(s: &str) -> &str {
    let end = s
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(s.len());
    let name = &s[..end];
    name.rsplit(':').next().unwrap_or(name)
}

/// Text with CDATA kept as is and the predefined entities and character references decoded;
/// anything else between `&` and `;` is left as written.
fn text_of(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").unwrap_or(after.len());
            out.push_str(&after[..end]);
            rest = after.get(end + 3..).unwrap_or("");
        } else if rest.starts_with('&') {
            let end = rest.bytes().take(12).position(|b| b == b';');
            let decoded = end.and_then(|end| {
                let name = &rest[1..end];
                let c = match name {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    _ => name.strip_prefix('#').and_then(|n| {
                        let code = match n.strip_prefix(['x', 'X']) {
                            Some(hex) => u32::from_str_radix(hex, 16).ok(),
                            None => n.parse().ok(),
                        };
                        code.and_then(char::from_u32)
                    }),
                };
                c.map(|c| (c, end))
            });
            match decoded {
                Some((c, end)) => {
                    out.push(c);
                    rest = &rest[end + 1..];
                }
                None => {
                    out.push('&');
                    rest = &rest[1..];
                }
            }
        } else if rest.starts_with('<') {
            // a stray tag inside a value is dropped
            rest = &rest[rest.find('>').map_or(rest.len(), |e| e + 1)..];
        } else {
            let next = rest.find(['&', '<']).unwrap_or(rest.len());
            out.push_str(&rest[..next]);
            rest = &rest[next..];
        }
    }
    out.trim().to_owned()
}

impl Sitemap {
    /// Reads a sitemap; `None` when the text is neither a `<urlset>` nor a `<sitemapindex>`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut sitemap = Sitemap::default();
        let mut root = None;
        let mut entry: Option<(Option<String>, Option<String>)> = None;
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            rest = &rest[open..];
            if rest.starts_with("<!--") {
                rest = rest.find("-->").map_or("", |e| &rest[e + 3..]);
                continue;
            }
            if rest.starts_with("<?") || rest.starts_with("<!") {
                rest = rest.find('>').map_or("", |e| &rest[e + 1..]);
                continue;
            }
            let closing = rest.starts_with("</");
            let name = local_name(&rest[if closing { 2 } else { 1 }..]).to_ascii_lowercase();
            let Some(end) = rest.find('>') else { break };
            let self_closing = rest[..end].ends_with('/');
            rest = &rest[end + 1..];
            match (closing, name.as_str()) {
                (false, "urlset") | (false, "sitemapindex") if root.is_none() => {
                    root = Some(name == "sitemapindex");
                }
                (false, "url") | (false, "sitemap") if !self_closing => entry = Some((None, None)),
                (false, "loc") | (false, "lastmod") if !self_closing => {
                    // the value runs to the next end tag; CDATA may hold '<'
                    let mut value_end = 0;
                    loop {
                        let s = &rest[value_end..];
                        if s.is_empty() || s.starts_with("</") {
                            break;
                        }
                        value_end += if let Some(after) = s.strip_prefix("<![CDATA[") {
                            9 + after.find("]]>").map_or(after.len(), |e| e + 3)
                        } else if let Some(tag) = s.strip_prefix('<') {
                            1 + tag.find('<').unwrap_or(tag.len())
                        } else {
                            s.find('<').unwrap_or(s.len())
                        };
                    }
                    let value = text_of(&rest[..value_end]);
                    rest = &rest[value_end..];
                    if let Some(e) = entry.as_mut() {
                        if name == "loc" {
                            e.0 = Some(value);
                        } else {
                            e.1 = Some(value);
                        }
                    }
                }
                (true, "url") | (true, "sitemap") => {
                    if let Some((Some(loc), lastmod)) = entry.take()
                        && !loc.is_empty()
                        && loc.len() <= MAX_LOC
                    {
                        sitemap.entries.push(Entry {
                            loc,
                            lastmod: lastmod.filter(|l| !l.is_empty()),
                        });
                    }
                }
                _ => {}
            }
        }
        sitemap.index = root?;
        Some(sitemap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_url_sets_and_indexes() {
        let set = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- generated -->
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>https://example.org/a?x=1&amp;y=2</loc><lastmod>2026-11-01</lastmod></url>
  <url>
    <loc><![CDATA[https://example.org/b<c>]]></loc>
  </url>
  <url><lastmod>2026-11-01</lastmod></url>
  <url><loc>  https://example.org/&#x63;&#100;  </loc></url>
  <url><loc>https://example.org/&unknown;</loc></url>
</urlset>"#;
        let parsed = Sitemap::parse(set).unwrap();
        assert!(!parsed.index);
        let locs: Vec<&str> = parsed.entries.iter().map(|e| e.loc.as_str()).collect();
        assert_eq!(
            locs,
            [
                "https://example.org/a?x=1&y=2",
                "https://example.org/b<c>",
                "https://example.org/cd",
                "https://example.org/&unknown;"
            ]
        );
        assert_eq!(parsed.entries[0].lastmod.as_deref(), Some("2026-11-01"));
        assert_eq!(parsed.entries[1].lastmod, None);

        let index = r#"<sm:sitemapindex xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9">
<sm:sitemap><sm:loc>https://example.org/s1.xml</sm:loc></sm:sitemap></sm:sitemapindex>"#;
        let parsed = Sitemap::parse(index).unwrap();
        assert!(parsed.index);
        assert_eq!(parsed.entries[0].loc, "https://example.org/s1.xml");
    }

    #[test]
    fn refuses_what_is_not_a_sitemap() {
        assert_eq!(Sitemap::parse("<html><body>hi</body></html>"), None);
        assert_eq!(Sitemap::parse(""), None);
        // entities are never expanded beyond the predefined ones
        let bomb = r#"<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><urlset><url><loc>&a;&a;</loc></url></urlset>"#;
        assert_eq!(Sitemap::parse(bomb).unwrap().entries[0].loc, "&a;&a;");
        // truncated input ends without panicking
        for cut in [
            "<urlset><url><loc>https://x",
            "<urlset><url><loc><![CDATA[x",
            "<urlset><",
        ] {
            let _ = Sitemap::parse(cut);
        }
    }
}
