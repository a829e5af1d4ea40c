//! Regenerates the sample corpus PDF from its text source:
//! `cargo run -p lariat-parse --example make_sample_pdf -- deploy/domains/rodeo/sources/arena-safety.txt deploy/domains/rodeo/corpus/arena-safety.pdf`
//! Pages in the source are separated by form feeds (\f).

#[path = "../tests/support/pdf.rs"]
mod pdf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, target] = args.as_slice() else {
        return Err("usage: make_sample_pdf SOURCE.txt TARGET.pdf".into());
    };
    let text = std::fs::read_to_string(source)?;
    let pages: Vec<String> = text.split('\u{c}').map(str::to_owned).collect();
    let title = text.lines().next().unwrap_or("document").to_owned();
    std::fs::write(target, pdf::text_pdf(&title, &pages))?;
    println!("wrote {target} ({} pages)", pages.len());
    Ok(())
}
