//! Files to documents. Each loader yields sections: text with its heading path (Markdown, HTML)
//! or page number (PDF), so every chunk knows where in its source it came from.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::location::Location;

/// A run of text under one heading path, or one page of a PDF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub location: Location,
    pub text: String,
    /// Markdown sections are split Markdown-aware.
    pub markdown: bool,
}

/// One document read from a file (a JSONL file gives many).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDocument {
    /// The file path, or `path#id` for a record inside a file.
    pub source: String,
    pub title: String,
    pub sections: Vec<Section>,
    /// Bytes the content hash is computed over.
    pub content: Vec<u8>,
    pub metadata: serde_json::Value,
}

/// Why a file could not be ingested; shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, LoadError> {
    Err(LoadError(msg.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Pdf,
    Markdown,
    Html,
    Text,
    Jsonl,
}

impl Format {
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "pdf" => Format::Pdf,
            "md" | "markdown" => Format::Markdown,
            "html" | "htm" => Format::Html,
            "txt" => Format::Text,
            "jsonl" => Format::Jsonl,
            _ => return None,
        })
    }
}

impl Format {
    /// The format of a page served as `media_type` (no parameters, lower case), else of the
    /// extension its URL path ends in (servers label Markdown and text loosely).
    pub fn of_served(media_type: &str, path: &str) -> Option<Format> {
        match media_type {
            "text/html" | "application/xhtml+xml" => Some(Format::Html),
            "application/pdf" => Some(Format::Pdf),
            "text/markdown" | "text/x-markdown" => Some(Format::Markdown),
            _ => match Format::of(Path::new(path)) {
                Some(Format::Jsonl) | None if media_type == "text/plain" => Some(Format::Text),
                Some(Format::Jsonl) => None,
                found => found,
            },
        }
    }
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Text content: refuses binary data and invalid UTF-8 with a reason.
fn decode_text(bytes: &[u8]) -> Result<&str, LoadError> {
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return fail("binary content (NUL bytes) in a text file");
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        LoadError(format!(
            "not valid UTF-8 (first bad byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// The sections with text, their heading paths bounded (so a hostile file cannot make every
/// passage carry megabytes of headings).
fn non_empty(sections: Vec<Section>) -> Result<Vec<Section>, LoadError> {
    let sections: Vec<Section> = sections
        .into_iter()
        .filter(|s| !s.text.trim().is_empty())
        .map(|mut s| {
            let headings = &mut s.location.headings;
            if headings.len() > MAX_HEADING_PATH {
                headings.drain(..headings.len() - MAX_HEADING_PATH);
            }
            for h in headings.iter_mut() {
                *h = cap_heading(h);
            }
            s
        })
        .collect();
    if sections.is_empty() {
        return fail("no text to index");
    }
    Ok(sections)
}

/// Reads one file into documents. `bytes` is the whole file.
pub fn load(path: &Path, format: Format, bytes: &[u8]) -> Result<Vec<LoadedDocument>, LoadError> {
    if bytes.is_empty() {
        return fail("empty file");
    }
    let source = path.to_string_lossy().into_owned();
    let single = |title: String, sections: Vec<Section>| {
        Ok(vec![LoadedDocument {
            source: source.clone(),
            title: cap_title(&title),
            sections: non_empty(sections)?,
            content: bytes.to_vec(),
            metadata: serde_json::json!({ "format": format_name(format) }),
        }])
    };
    match format {
        Format::Text => {
            let text = decode_text(bytes)?;
            single(
                file_stem(path),
                vec![Section {
                    location: Location::default(),
                    text: text.to_owned(),
                    markdown: false,
                }],
            )
        }
        Format::Markdown => {
            let (title, sections) = markdown_sections(decode_text(bytes)?);
            single(title.unwrap_or_else(|| file_stem(path)), sections)
        }
        Format::Html => {
            let (title, sections) = html_sections(decode_text(bytes)?)?;
            single(title.unwrap_or_else(|| file_stem(path)), sections)
        }
        Format::Pdf => {
            let pages = pdf_pages(bytes)?;
            let title = pages
                .iter()
                .flat_map(|p| p.lines())
                .map(str::trim)
                .find(|l| !l.is_empty())
                .filter(|l| l.len() <= 120)
                .map(str::to_owned)
                .unwrap_or_else(|| file_stem(path));
            let sections = pages
                .into_iter()
                .enumerate()
                .map(|(i, text)| Section {
                    location: Location {
                        pages: Some((i as u32 + 1, i as u32 + 1)),
                        headings: Vec::new(),
                    },
                    text,
                    markdown: false,
                })
                .collect();
            single(title, sections)
        }
        Format::Jsonl => jsonl_documents(&source, decode_text(bytes)?),
    }
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Pdf => "pdf",
        Format::Markdown => "markdown",
        Format::Html => "html",
        Format::Text => "text",
        Format::Jsonl => "jsonl",
    }
}

// ---- Markdown -------------------------------------------------------------------------------

/// Splits Markdown at its headings: each section keeps the path of headings above it. The first
/// level-1 heading is the title.
pub fn markdown_sections(text: &str) -> (Option<String>, Vec<Section>) {
    use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

    let mut title = None;
    let mut sections = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut section_start = 0;
    let mut heading: Option<(usize, String, usize, usize)> = None; // level, text, start, end
    let mut push = |path: &[(usize, String)], body: &str| {
        sections.push(Section {
            location: Location {
                pages: None,
                headings: path.iter().map(|(_, h)| h.clone()).collect(),
            },
            text: body.trim().to_owned(),
            markdown: true,
        });
    };
    for (event, range) in Parser::new(text).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                let level = match level {
                    HeadingLevel::H1 => 1,
                    HeadingLevel::H2 => 2,
                    HeadingLevel::H3 => 3,
                    HeadingLevel::H4 => 4,
                    HeadingLevel::H5 => 5,
                    HeadingLevel::H6 => 6,
                };
                heading = Some((level, String::new(), range.start, range.end));
            }
            Event::Text(t) | Event::Code(t) if heading.is_some() => {
                if let Some((_, h, _, _)) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, h, start, end)) = heading.take() {
                    push(&path, &text[section_start..start]);
                    let h = h.trim().to_owned();
                    if level == 1 && title.is_none() {
                        title = Some(h.clone());
                    }
                    path.retain(|(l, _)| *l < level);
                    path.push((level, h));
                    section_start = end;
                }
            }
            _ => {}
        }
    }
    push(&path, &text[section_start..]);
    (title, sections)
}

// ---- HTML -----------------------------------------------------------------------------------

const HTML_SKIP: &[&str] = &[
    "script", "style", "nav", "header", "footer", "aside", "noscript", "template", "svg", "form",
    "iframe", "button", "select",
];
const HTML_BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "br",
    "tr",
    "table",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "hr",
    "body",
];

struct HtmlWalker {
    sections: Vec<Section>,
    path: Vec<(usize, String)>,
    current: String,
    title_h1: Option<String>,
}

impl HtmlWalker {
    fn flush(&mut self) {
        let text = std::mem::take(&mut self.current);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if !lines.is_empty() {
            self.sections.push(Section {
                location: Location {
                    pages: None,
                    headings: self.path.iter().map(|(_, h)| h.clone()).collect(),
                },
                text: lines.join("\n"),
                markdown: false,
            });
        }
    }

    fn newline(&mut self) {
        if !self.current.ends_with('\n') {
            self.current.push('\n');
        }
    }

    /// Walks the tree with an explicit stack: however deep the page nests, the thread's stack
    /// does not grow.
    fn walk(&mut self, root: ego_tree::NodeRef<'_, scraper::Node>) {
        enum Step<'a> {
            Enter(ego_tree::NodeRef<'a, scraper::Node>),
            /// After an element's children: close its block, or end a table cell.
            Leave {
                block: bool,
                cell: bool,
            },
        }
        let mut stack = vec![Step::Enter(root)];
        while let Some(step) = stack.pop() {
            let node = match step {
                Step::Enter(node) => node,
                Step::Leave { block, cell } => {
                    if block {
                        self.newline();
                    }
                    if cell {
                        self.current.push_str(" | ");
                    }
                    continue;
                }
            };
            match node.value() {
                scraper::Node::Text(t) => self.text(t),
                scraper::Node::Element(e) => {
                    let name = e.name();
                    if HTML_SKIP.contains(&name) || e.attr("hidden").is_some() {
                        continue;
                    }
                    if let Some(level) = heading_level(name) {
                        let text = scraper::ElementRef::wrap(node)
                            .map(|el| el.text().collect::<Vec<_>>().join(" "))
                            .unwrap_or_default();
                        self.heading(level, &text);
                        continue;
                    }
                    let block = HTML_BLOCKS.contains(&name);
                    if name == "li" {
                        self.newline();
                        self.current.push_str("- ");
                    } else if block {
                        self.newline();
                    }
                    stack.push(Step::Leave {
                        block: block || name == "li",
                        cell: matches!(name, "td" | "th"),
                    });
                    stack.extend(node.children().rev().map(Step::Enter));
                }
                _ => stack.extend(node.children().rev().map(Step::Enter)),
            }
        }
    }

    fn text(&mut self, t: &str) {
        let collapsed = t.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return;
        }
        if !self.current.is_empty()
            && !self.current.ends_with(['\n', ' '])
            && t.starts_with(char::is_whitespace)
        {
            self.current.push(' ');
        }
        self.current.push_str(&collapsed);
        if t.ends_with(char::is_whitespace) {
            self.current.push(' ');
        }
    }

    fn heading(&mut self, level: usize, text: &str) {
        let text = cap_heading(&text.split_whitespace().collect::<Vec<_>>().join(" "));
        self.flush();
        if level == 1 && self.title_h1.is_none() {
            self.title_h1 = Some(text.clone());
        }
        self.path.retain(|(l, _)| *l < level);
        if !text.is_empty() {
            self.path.push((level, text));
        }
    }
}

fn heading_level(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// The deepest element nesting an HTML text can produce, estimated without parsing: start tags
/// of elements that need their end tag count one level down, end tags one up. Elements whose
/// end tag may be left out (`p`, `li`, `td`…), void elements and self-closing tags do not count,
/// and the contents of comments, scripts and styles are skipped. Browsers' parsers do the same
/// nesting for unclosed elements, so the estimate follows the tree the parser would build.
pub fn html_nesting_depth(html: &str) -> usize {
    const NOT_NESTING: &[&str] = &[
        // void elements
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr", "param", "keygen",
        // end tag optional: closed by the next sibling
        "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot",
        "colgroup", "caption", "rb", "rt", "rtc", "rp", "html", "head", "body",
    ];
    let bytes = html.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    let skip_past = |from: usize, needle: &[u8]| -> usize {
        bytes[from..]
            .windows(needle.len())
            .position(|w| w.eq_ignore_ascii_case(needle))
            .map_or(bytes.len(), |p| from + p + needle.len())
    };
    while let Some(p) = bytes[i..].iter().position(|b| *b == b'<') {
        i += p + 1;
        if bytes[i..].starts_with(b"!--") {
            i = skip_past(i, b"-->");
            continue;
        }
        let closing = bytes.get(i) == Some(&b'/');
        let start = i + usize::from(closing);
        let len = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if len == 0 {
            continue;
        }
        let name = html[start..start + len].to_ascii_lowercase();
        // the tag ends at its '>' (a '<' first means it never closed): never scans past either
        let tag_end = bytes[start..]
            .iter()
            .position(|b| *b == b'>' || *b == b'<')
            .map_or(bytes.len(), |p| start + p);
        let self_closing = tag_end > 0 && bytes.get(tag_end - 1) == Some(&b'/');
        i = (start + len).min(bytes.len());
        if NOT_NESTING.contains(&name.as_str()) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else if !self_closing {
            depth += 1;
            deepest = deepest.max(depth);
            if matches!(name.as_str(), "script" | "style" | "textarea" | "title") {
                i = skip_past(i, format!("</{name}").as_bytes());
                depth -= 1;
            }
        }
    }
    deepest
}

/// Elements nested deeper than this make a page refused: parsing such nesting takes time that
/// grows with the square of the depth (and no real page comes near it).
pub const MAX_HTML_DEPTH: usize = 512;

/// Longest heading kept in a heading path, in characters.
pub const MAX_HEADING_CHARS: usize = 300;
/// Longest title kept, in characters.
pub const MAX_TITLE_CHARS: usize = 300;
/// Headings kept in one heading path.
pub const MAX_HEADING_PATH: usize = 12;

fn cap_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text.to_owned(),
    }
}

fn cap_heading(text: &str) -> String {
    cap_chars(text, MAX_HEADING_CHARS)
}

/// A title as kept: its whitespace collapsed and its length capped.
pub fn cap_title(title: &str) -> String {
    cap_chars(
        &title.split_whitespace().collect::<Vec<_>>().join(" "),
        MAX_TITLE_CHARS,
    )
}

/// The text of an HTML page by heading path; scripts, styles and navigation dropped, list items
/// kept one per line. The title is `<title>`, else the first `<h1>`. A page nested deeper than
/// [`MAX_HTML_DEPTH`] is refused before it is parsed.
pub fn html_sections(html: &str) -> Result<(Option<String>, Vec<Section>), LoadError> {
    let depth = html_nesting_depth(html);
    if depth > MAX_HTML_DEPTH {
        return fail(format!(
            "HTML nested {depth} elements deep; pages nested deeper than {MAX_HTML_DEPTH} are refused"
        ));
    }
    let doc = scraper::Html::parse_document(html);
    let title = scraper::Selector::parse("head > title")
        .ok()
        .and_then(|sel| doc.select(&sel).next())
        .map(|t| t.text().collect::<Vec<_>>().join(" "))
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty());
    let body = scraper::Selector::parse("body")
        .ok()
        .and_then(|sel| doc.select(&sel).next());
    let mut walker = HtmlWalker {
        sections: Vec::new(),
        path: Vec::new(),
        current: String::new(),
        title_h1: None,
    };
    match body {
        Some(body) => walker.walk(*body),
        None => walker.walk(doc.tree.root()),
    }
    walker.flush();
    Ok((title.or(walker.title_h1), walker.sections))
}

// ---- PDF ------------------------------------------------------------------------------------

/// The text of each page. pdf-extract panics on some malformed files: a panic is caught and
/// reported as a corrupt PDF.
pub fn pdf_pages(bytes: &[u8]) -> Result<Vec<String>, LoadError> {
    if !bytes.starts_with(b"%PDF") {
        return fail("not a PDF (no %PDF header)");
    }
    let result = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(bytes));
    match result {
        Ok(Ok(pages)) if pages.iter().any(|p| !p.trim().is_empty()) => Ok(pages),
        Ok(Ok(_)) => fail("the PDF has no extractable text (scanned images?)"),
        Ok(Err(e)) => {
            let msg = e.to_string();
            if msg.to_ascii_lowercase().contains("encrypt") || msg.contains("password") {
                fail(format!("encrypted PDF: {msg}"))
            } else {
                fail(format!("corrupt PDF: {msg}"))
            }
        }
        Err(_) => fail("corrupt PDF: the parser could not read it"),
    }
}

// ---- JSONL ----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct JsonlRecord {
    #[serde(rename = "_id")]
    id: serde_json::Value,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    metadata: serde_json::Value,
}

/// One document per line: `{"_id", "title", "text"}` (BEIR and most exported corpora). A
/// malformed line fails the whole file, naming the line, so nothing is half-ingested silently.
/// A record with neither title nor text (real collections have some) has nothing to find and is
/// left out; a file of nothing else has no records.
pub fn jsonl_documents(source: &str, text: &str) -> Result<Vec<LoadedDocument>, LoadError> {
    let mut docs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: JsonlRecord =
            serde_json::from_str(line).map_err(|e| LoadError(format!("line {}: {e}", i + 1)))?;
        let id = match &record.id {
            serde_json::Value::String(s) if !s.is_empty() => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return fail(format!(
                    "line {}: \"_id\" must be a non-empty string or number",
                    i + 1
                ));
            }
        };
        if !seen.insert(id.clone()) {
            return fail(format!("line {}: duplicate _id {id:?}", i + 1));
        }
        let title = record.title.unwrap_or_default();
        let body = record.text.unwrap_or_default();
        if body.trim().is_empty() && title.trim().is_empty() {
            continue;
        }
        let content = format!("{title}\0{body}").into_bytes();
        // a record with a title and no text is found by its title (found by fuzzing: it used to
        // become a document with no passage at all)
        let text = if body.trim().is_empty() {
            title.clone()
        } else {
            body
        };
        docs.push(LoadedDocument {
            source: format!("{source}#{id}"),
            title: cap_title(&title),
            sections: vec![Section {
                location: Location::default(),
                text,
                markdown: false,
            }],
            content,
            metadata: serde_json::json!({ "format": "jsonl", "id": id, "metadata": record.metadata }),
        });
    }
    if docs.is_empty() {
        return fail("no records");
    }
    Ok(docs)
}

#[cfg(test)]
mod tests;
