//! Writes plain-text pages as a PDF with a built-in font (printpdf), wrapping long lines. Used by
//! the tests and by the example that generates the sample corpus PDF.

use printpdf::{
    BuiltinFont, Mm, Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem,
};

const WRAP: usize = 95;

fn wrap(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for word in line.split_whitespace() {
        let last = out.last_mut().expect("never empty");
        if !last.is_empty() && last.len() + 1 + word.len() > WRAP {
            out.push(word.to_owned());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    out
}

/// One PDF page per entry of `pages`; each entry's lines are wrapped and set in 10-pt Helvetica.
pub fn text_pdf(title: &str, pages: &[String]) -> Vec<u8> {
    let mut doc = PdfDocument::new(title);
    let pages: Vec<PdfPage> = pages
        .iter()
        .map(|text| {
            let mut ops = vec![
                Op::StartTextSection,
                Op::SetTextCursor {
                    pos: Point {
                        x: Mm(20.0).into(),
                        y: Mm(277.0).into(),
                    },
                },
                Op::SetLineHeight { lh: Pt(13.0) },
                Op::SetFont {
                    font: PdfFontHandle::Builtin(BuiltinFont::Helvetica),
                    size: Pt(10.0),
                },
            ];
            for line in text.lines().flat_map(wrap) {
                ops.push(Op::ShowText {
                    items: vec![TextItem::Text(line)],
                });
                ops.push(Op::AddLineBreak);
            }
            ops.push(Op::EndTextSection);
            PdfPage::new(Mm(210.0), Mm(297.0), ops)
        })
        .collect();
    let mut warnings = Vec::new();
    doc.with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut warnings)
}
