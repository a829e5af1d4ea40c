//! The PDF export, laid out by hand with printpdf: A4 pages, text set in DejaVu Sans (code in
//! DejaVu Sans Mono), both embedded with a ToUnicode map so every word can be selected and
//! searched. Lines are wrapped from the fonts' own glyph widths (a word wider than the line is
//! broken), pages are numbered, each answer's `[n]` markers link to its passage in the "Sources"
//! appendix, and a character neither font has is printed as U+FFFD, never dropped silently.

use std::collections::HashMap;
use std::sync::OnceLock;

use printpdf::{
    Actions, Color, Destination, FontId, LinkAnnotation, Mm, Op, ParsedFont, PdfDocument,
    PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, Rect, Rgb, TextItem,
};

use super::text::{Block, blocks};
use super::{Transcript, TurnView, ids, place};
use base::error::{Error, Result};
use base::types::{format_time, plain_text};

const SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const MONO: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

/// A4 in points, with 20 mm margins.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 56.7;
const TOP: f32 = PAGE_H - MARGIN;
const BOTTOM: f32 = MARGIN;
const WIDTH: f32 = PAGE_W - 2.0 * MARGIN;
const PLACEHOLDER: char = '\u{FFFD}';
const LINK_BLUE: (f32, f32, f32) = (0.05, 0.25, 0.65);

/// The two faces, parsed once per process.
fn faces() -> Result<&'static (ParsedFont, ParsedFont)> {
    static FACES: OnceLock<Option<(ParsedFont, ParsedFont)>> = OnceLock::new();
    FACES
        .get_or_init(|| {
            let mut warnings = Vec::new();
            let named = |bytes, name: &str, warnings: &mut Vec<_>| {
                ParsedFont::from_bytes(bytes, 0, warnings).map(|font| ParsedFont {
                    font_name: Some(name.to_owned()),
                    ..font
                })
            };
            Some((
                named(SANS, "DejaVuSans", &mut warnings)?,
                named(MONO, "DejaVuSansMono", &mut warnings)?,
            ))
        })
        .as_ref()
        .ok_or_else(|| Error::Internal("the export's fonts do not parse".into()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Title,
    Meta,
    Speaker,
    Heading,
    Body,
    Code,
    SourceHead,
    SourceMeta,
    SourceText,
    Footer,
}

impl Style {
    fn size(self) -> f32 {
        match self {
            Style::Title => 18.0,
            Style::Speaker => 11.5,
            Style::Heading => 11.0,
            Style::Body => 10.5,
            Style::SourceHead => 10.0,
            Style::SourceText => 9.0,
            Style::Meta | Style::Code | Style::SourceMeta => 8.5,
            Style::Footer => 8.0,
        }
    }

    fn leading(self) -> f32 {
        self.size() * 1.4
    }

    fn mono(self) -> bool {
        self == Style::Code
    }

    fn color(self) -> (f32, f32, f32) {
        match self {
            Style::Meta | Style::SourceMeta | Style::Footer => (0.33, 0.33, 0.33),
            Style::Speaker => (0.1, 0.2, 0.45),
            _ => (0.0, 0.0, 0.0),
        }
    }
}

/// One paragraph to set.
struct Para {
    text: String,
    style: Style,
    /// Left indent of every line, and the extra indent of lines after the first (a list item's
    /// text under its marker).
    indent: f32,
    hang: f32,
    /// Space above it.
    before: f32,
    /// `[n]` markers in it link to sources of this turn.
    links: Option<usize>,
    /// It is the appendix entry of source `n` of a turn.
    anchor: Option<(usize, usize)>,
}

impl Para {
    fn new(style: Style, text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            style,
            indent: 0.0,
            hang: 0.0,
            before: 0.0,
            links: None,
            anchor: None,
        }
    }

    fn before(mut self, space: f32) -> Self {
        self.before = space;
        self
    }
}

/// A face with its id in the document.
struct Face {
    font: &'static ParsedFont,
    id: FontId,
    units: f32,
}

impl Face {
    fn has(&self, c: char) -> bool {
        self.font.lookup_glyph_index(c as u32).is_some()
    }

    /// Advance of `c` at size 1.
    fn advance(&self, c: char) -> f32 {
        self.font
            .lookup_glyph_index(c as u32)
            .and_then(|g| self.font.get_glyph_width(g))
            .map_or(0.0, |w| f32::from(w) / self.units)
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.advance(c)).sum::<f32>() * size
    }

    /// `text` with tabs as spaces, other control characters dropped and characters the face
    /// lacks replaced by a visible placeholder.
    fn printable(&self, text: &str) -> String {
        let placeholder = if self.has(PLACEHOLDER) {
            PLACEHOLDER
        } else {
            '?'
        };
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '\t' => out.push_str("    "),
                '\n' => out.push('\n'),
                c if c.is_control() => {}
                c if c == ' ' || self.has(c) => out.push(c),
                // joiners, variation selectors and other invisible marks carry no glyph
                '\u{200b}'..='\u{200f}' | '\u{fe00}'..='\u{fe0f}' | '\u{2060}' => {}
                _ => out.push(placeholder),
            }
        }
        out
    }

    /// Lines of `text` no wider than `first` (the first line) and `rest` (the others): words
    /// are kept whole when they fit a line, broken where they do not. With `keep_breaks` (code)
    /// each line of the text starts a new line and spaces are kept as they are.
    fn wrap(&self, text: &str, size: f32, first: f32, rest: f32, keep_breaks: bool) -> Vec<String> {
        let mut lines = Vec::new();
        let limit = |lines: &Vec<String>| if lines.is_empty() { first } else { rest };
        if keep_breaks {
            for source in text.split('\n') {
                let mut line = String::new();
                let mut width = 0.0;
                for c in source.chars() {
                    let w = self.advance(c) * size;
                    if width + w > limit(&lines) && !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                        width = 0.0;
                    }
                    line.push(c);
                    width += w;
                }
                lines.push(line);
            }
            return lines;
        }
        let space = self.advance(' ') * size;
        let mut line = String::new();
        let mut width = 0.0;
        for word in text.split_whitespace() {
            let w = self.width(word, size);
            if !line.is_empty() && width + space + w <= limit(&lines) {
                line.push(' ');
                line.push_str(word);
                width += space + w;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                width = 0.0;
            }
            if w <= limit(&lines) {
                line.push_str(word);
                width = w;
                continue;
            }
            // a word wider than a line: as many characters as fit, line after line
            for c in word.chars() {
                let cw = self.advance(c) * size;
                if width + cw > limit(&lines) && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    width = 0.0;
                }
                line.push(c);
                width += cw;
            }
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        lines
    }
}

/// Where the next line goes, and the links to resolve once every page is set.
struct Layout {
    sans: Face,
    mono: Face,
    pages: Vec<Vec<Op>>,
    y: f32,
    /// (turn, n) → (page index, top of its entry)
    anchors: HashMap<(usize, usize), (usize, f32)>,
    links: Vec<(usize, Rect, (usize, usize))>,
    bookmarks: Vec<(String, usize)>,
}

impl Layout {
    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = TOP;
    }

    fn page(&self) -> usize {
        self.pages.len() - 1
    }

    fn face(&self, style: Style) -> &Face {
        if style.mono() { &self.mono } else { &self.sans }
    }

    fn bookmark(&mut self, name: String) {
        let page = self.page();
        self.bookmarks.push((name, page));
    }

    fn set(&mut self, para: Para) {
        let style = para.style;
        let (size, leading) = (style.size(), style.leading());
        let face = self.face(style);
        let text = face.printable(&para.text);
        let first = WIDTH - para.indent;
        let lines = face.wrap(&text, size, first, first - para.hang, style.mono());
        if self.y < TOP {
            self.y -= para.before;
        }
        for (i, line) in lines.iter().enumerate() {
            if self.y - leading < BOTTOM {
                self.new_page();
            }
            if i == 0
                && let Some(key) = para.anchor
            {
                let page = self.page();
                self.anchors.insert(key, (page, self.y));
            }
            let x = MARGIN + para.indent + if i == 0 { 0.0 } else { para.hang };
            let baseline = self.y - size;
            self.line(line, style, x, baseline, para.links);
            self.y -= leading;
        }
    }

    /// One line of text at (x, baseline); with `links`, its `[n]` markers in blue, each noted
    /// for a link to its source.
    fn line(&mut self, line: &str, style: Style, x: f32, baseline: f32, links: Option<usize>) {
        let size = style.size();
        let face = self.face(style);
        let id = face.id.clone();
        let mut segments: Vec<(String, bool)> = Vec::new();
        let mut found = Vec::new();
        let mut at = 0;
        if let Some(turn) = links {
            for (start, end, n) in markers(line) {
                if start > at {
                    segments.push((line[at..start].to_owned(), false));
                }
                let left = x + face.width(&line[..start], size);
                let width = face.width(&line[start..end], size);
                found.push((
                    Rect::from_xywh(
                        Pt(left),
                        Pt(baseline - size * 0.25),
                        Pt(width),
                        Pt(size * 1.2),
                    ),
                    (turn, n),
                ));
                segments.push((line[start..end].to_owned(), true));
                at = end;
            }
        }
        if at < line.len() || segments.is_empty() {
            segments.push((line[at..].to_owned(), false));
        }
        let mut ops = vec![
            Op::StartTextSection,
            Op::SetFont {
                font: PdfFontHandle::External(id),
                size: Pt(size),
            },
            Op::SetTextCursor {
                pos: Point {
                    x: Pt(x),
                    y: Pt(baseline),
                },
            },
        ];
        for (text, marker) in segments {
            ops.push(fill(if marker { LINK_BLUE } else { style.color() }));
            ops.push(Op::ShowText {
                items: vec![TextItem::Text(text)],
            });
        }
        ops.push(Op::EndTextSection);
        let page = self.page();
        self.pages[page].extend(ops);
        self.links
            .extend(found.into_iter().map(|(rect, key)| (page, rect, key)));
    }

    /// Page numbers, and each marker's link to the page and place of its source.
    fn finish(mut self, title: &str) -> (Vec<Vec<Op>>, Vec<(String, usize)>) {
        let total = self.pages.len();
        let title: String = self.sans.printable(title).chars().take(80).collect();
        for page in 0..total {
            let footer = format!("{title} — page {} of {total}", page + 1);
            let width = self.sans.width(&footer, Style::Footer.size());
            let ops = vec![
                Op::StartTextSection,
                Op::SetFont {
                    font: PdfFontHandle::External(self.sans.id.clone()),
                    size: Pt(Style::Footer.size()),
                },
                Op::SetTextCursor {
                    pos: Point {
                        x: Pt((PAGE_W - width) / 2.0),
                        y: Pt(BOTTOM / 2.0),
                    },
                },
                fill(Style::Footer.color()),
                Op::ShowText {
                    items: vec![TextItem::Text(footer)],
                },
                Op::EndTextSection,
            ];
            self.pages[page].extend(ops);
        }
        for (page, rect, key) in std::mem::take(&mut self.links) {
            let Some(&(target, top)) = self.anchors.get(&key) else {
                continue;
            };
            let link = LinkAnnotation::new(
                rect,
                Actions::go_to(Destination::Xyz {
                    page: target + 1,
                    left: Some(MARGIN),
                    top: Some(top + 4.0),
                    zoom: None,
                }),
                Some(printpdf::BorderArray::Solid([0.0, 0.0, 0.0])),
                None,
                None,
            );
            self.pages[page].push(Op::LinkAnnotation { link });
        }
        (self.pages, self.bookmarks)
    }
}

fn fill((r, g, b): (f32, f32, f32)) -> Op {
    Op::SetFillColor {
        col: Color::Rgb(Rgb::new(r, g, b, None)),
    }
}

/// The `[n]` markers of a line: byte start, byte end, n.
fn markers(line: &str) -> Vec<(usize, usize, usize)> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'[' {
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let end = i + 1 + digits;
            if (1..=4).contains(&digits) && bytes.get(end) == Some(&b']') {
                if let Ok(n) = line[i + 1..end].parse() {
                    out.push((i, end + 1, n));
                }
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The paragraphs of one turn.
fn turn_paras(turn: &TurnView) -> Vec<Para> {
    let mut paras = vec![
        Para::new(
            Style::Speaker,
            format!(
                "{}. {} — {}",
                turn.number,
                turn.speaker,
                format_time(turn.at)
            ),
        )
        .before(14.0),
    ];
    let links = (!turn.sources.is_empty()).then_some(turn.number);
    for block in blocks(&turn.text) {
        let mut para = match block {
            Block::Paragraph(text) => Para::new(Style::Body, text),
            Block::Heading(text) => Para::new(Style::Heading, text),
            Block::Quote(text) => Para {
                indent: 14.0,
                ..Para::new(Style::Body, text)
            },
            Block::Code(text) => Para {
                indent: 8.0,
                ..Para::new(Style::Code, text)
            },
            Block::Item {
                depth,
                marker,
                text,
            } => {
                let lead = format!("{marker} ");
                Para {
                    indent: 12.0 * depth as f32,
                    hang: 12.0,
                    ..Para::new(Style::Body, format!("{lead}{text}"))
                }
            }
        };
        para.before = 4.0;
        para.links = if para.style.mono() { None } else { links };
        paras.push(para);
    }
    if let Some(note) = turn.stopped_note() {
        paras.push(Para::new(Style::Meta, note).before(3.0));
    }
    if !turn.sources.is_empty() {
        paras.push(Para {
            links,
            ..Para::new(Style::Meta, turn.source_line()).before(3.0)
        });
    }
    paras
}

/// The whole PDF.
pub(super) fn render(t: &Transcript) -> Result<Vec<u8>> {
    let (sans, mono) = faces()?;
    let mut doc = PdfDocument::new(&t.title);
    if let Ok(at) = printpdf::OffsetDateTime::from_unix_timestamp(t.exported_at.div_euclid(1000)) {
        let info = &mut doc.metadata.info;
        info.creation_date = at;
        info.modification_date = at;
        info.metadata_date = at;
    }
    doc.metadata.info.creator = "Lariat".into();
    doc.metadata.info.producer = format!("Lariat {} (printpdf)", env!("CARGO_PKG_VERSION"));
    let mut layout = Layout {
        sans: Face {
            font: sans,
            id: doc.add_font(sans),
            units: f32::from(sans.units_per_em.max(1)),
        },
        mono: Face {
            font: mono,
            id: doc.add_font(mono),
            units: f32::from(mono.units_per_em.max(1)),
        },
        pages: Vec::new(),
        y: TOP,
        anchors: HashMap::new(),
        links: Vec::new(),
        bookmarks: Vec::new(),
    };
    layout.new_page();
    layout.set(Para::new(Style::Title, t.title.clone()));
    layout.set(
        Para::new(
            Style::Meta,
            format!(
                "Conversation started {}, {} messages; exported from Lariat {}.",
                format_time(t.created_at),
                t.turns.len(),
                format_time(t.exported_at)
            ),
        )
        .before(2.0),
    );
    for turn in &t.turns {
        if turn.speaker == "You" {
            let first: String = turn
                .text
                .split_whitespace()
                .take(10)
                .collect::<Vec<_>>()
                .join(" ");
            layout.bookmark(format!("{}. {first}", turn.number));
        }
        for para in turn_paras(turn) {
            layout.set(para);
        }
    }
    if t.turns.iter().any(|turn| !turn.sources.is_empty()) {
        layout.new_page();
        layout.bookmark("Sources".into());
        layout.set(Para::new(Style::Title, "Sources"));
        for turn in &t.turns {
            for s in &turn.sources {
                let title = if s.passage.title.is_empty() {
                    &s.passage.chunk_id
                } else {
                    &s.passage.title
                };
                layout.set(Para {
                    anchor: Some((turn.number, s.n)),
                    ..Para::new(
                        Style::SourceHead,
                        format!("{}  {title}", turn.reference(s.n)),
                    )
                    .before(12.0)
                });
                let place = place(&s.passage);
                if !place.is_empty() {
                    layout.set(Para::new(Style::SourceMeta, place).before(1.0));
                }
                layout.set(Para::new(Style::SourceMeta, ids(&s.passage)));
                layout.set(Para {
                    indent: 8.0,
                    ..Para::new(Style::SourceText, plain_text(&s.passage.text)).before(3.0)
                });
            }
        }
    }
    let (pages, bookmarks) = layout.finish(&t.title);
    doc.with_pages(
        pages
            .into_iter()
            .map(|ops| PdfPage::new(Mm(210.0), Mm(297.0), ops))
            .collect(),
    );
    for (name, page) in bookmarks {
        doc.add_bookmark(&name, page + 1);
    }
    let mut warnings = Vec::new();
    Ok(doc.save(&PdfSaveOptions::default(), &mut warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_where_they_are() {
        assert_eq!(markers("a [1] b [23]."), vec![(2, 5, 1), (8, 12, 23)]);
        assert!(markers("[x] [] [12345] [").is_empty());
        assert_eq!(markers("[[2]]"), vec![(1, 4, 2)]);
    }

    fn face(doc: &mut PdfDocument) -> Face {
        let (sans, _) = faces().unwrap();
        Face {
            font: sans,
            id: doc.add_font(sans),
            units: f32::from(sans.units_per_em),
        }
    }

    #[test]
    fn lines_fit_and_long_words_break() {
        let mut doc = PdfDocument::new("t");
        let face = face(&mut doc);
        let word = "x".repeat(10_000);
        let lines = face.wrap(&word, 10.0, WIDTH, WIDTH, false);
        assert!(lines.len() > 10);
        assert_eq!(lines.concat(), word);
        for line in &lines {
            assert!(face.width(line, 10.0) <= WIDTH + 0.01);
        }
        let text = "the quick brown fox ".repeat(50);
        let lines = face.wrap(&text, 10.0, WIDTH, WIDTH - 20.0, false);
        assert_eq!(lines.join(" "), text.trim_end());
        assert!(
            lines
                .iter()
                .skip(1)
                .all(|l| face.width(l, 10.0) <= WIDTH - 20.0)
        );
    }

    #[test]
    fn missing_glyphs_become_a_placeholder() {
        let mut doc = PdfDocument::new("t");
        let face = face(&mut doc);
        assert_eq!(face.printable("Ωж é"), "Ωж é");
        assert_eq!(face.printable("漢\u{7}a\tb"), "\u{FFFD}a    b");
    }
}
