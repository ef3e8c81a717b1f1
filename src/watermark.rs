//! Watermarks on PDF downloads through share links: a line naming the verified recipient and the
//! time, at the top and the bottom of every page, drawn in a standard font (Helvetica, which every
//! reader has) by a content stream appended to each page with `lopdf`. The page's own drawing is
//! wrapped in `q`/`Q` first, so whatever state it leaves cannot hide or move the stamp.
//!
//! The whole file is stamped in memory, so links only stamp files up to
//! `documents.max_watermark_bytes`; a PDF that cannot be parsed is refused rather than served
//! without its watermark.

use lopdf::{dictionary, Dictionary, Document, Object, Stream};

const FONT: &[u8] = b"SRWatermark";

/// Text the standard fonts can show: printable ASCII, everything else as `?`.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Escapes a PDF literal string's delimiters.
fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in printable(s).chars() {
        if matches!(c, '(' | ')' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn number(o: &Object) -> Option<f64> {
    match o {
        Object::Integer(i) => Some(*i as f64),
        Object::Real(r) => Some(f64::from(*r)),
        _ => None,
    }
}

/// The page's MediaBox (inherited from the page tree if need be), else US Letter.
fn media_box(doc: &Document, page: lopdf::ObjectId) -> [f64; 4] {
    let mut id = Some(page);
    for _ in 0..32 {
        let Some(d) = id.and_then(|i| doc.get_dictionary(i).ok()) else {
            break;
        };
        if let Ok(b) = d.get(b"MediaBox") {
            let arr = match b {
                Object::Reference(r) => doc.get_object(*r).and_then(Object::as_array).ok(),
                o => o.as_array().ok(),
            };
            if let Some(a) = arr {
                let v: Vec<f64> = a.iter().filter_map(number).collect();
                if v.len() == 4 {
                    return [v[0], v[1], v[2], v[3]];
                }
            }
        }
        id = d.get(b"Parent").and_then(Object::as_reference).ok();
    }
    [0.0, 0.0, 612.0, 792.0]
}

/// Adds the font to the page's resources (which may be shared, inherited or referenced).
fn add_font(
    doc: &mut Document,
    page: lopdf::ObjectId,
    font: lopdf::ObjectId,
) -> anyhow::Result<()> {
    let resources = doc.get_or_create_resources(page)?;
    let fonts = match resources {
        Object::Dictionary(d) => d.get(b"Font").ok().cloned(),
        _ => anyhow::bail!("page resources are not a dictionary"),
    };
    match fonts {
        Some(Object::Reference(r)) => {
            doc.get_object_mut(r)?
                .as_dict_mut()?
                .set(FONT, Object::Reference(font));
        }
        Some(Object::Dictionary(mut d)) => {
            d.set(FONT, Object::Reference(font));
            doc.get_or_create_resources(page)?
                .as_dict_mut()?
                .set("Font", d);
        }
        _ => {
            doc.get_or_create_resources(page)?
                .as_dict_mut()?
                .set("Font", dictionary! { FONT => Object::Reference(font) });
        }
    }
    Ok(())
}

/// `pdf` with `line` stamped at the top and bottom of every page.
pub fn stamp_pdf(pdf: &[u8], line: &str) -> anyhow::Result<Vec<u8>> {
    let mut doc = Document::load_mem(pdf)?;
    if doc.is_encrypted() {
        anyhow::bail!("the PDF is encrypted: it cannot be watermarked");
    }
    let pages = doc.get_pages();
    if pages.is_empty() {
        anyhow::bail!("the PDF has no pages");
    }
    let font = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let text = literal(line);
    let font_name = String::from_utf8_lossy(FONT).to_string();
    for (_, page) in pages {
        let [x0, y0, _x1, y1] = media_box(&doc, page);
        add_font(&mut doc, page, font)?;
        // Save the graphics state before the page's own drawing...
        let page_dict = doc.get_dictionary(page)?.clone();
        let mut contents: Vec<Object> = match page_dict.get(b"Contents") {
            Ok(Object::Reference(id)) => match doc.get_object(*id) {
                Ok(Object::Array(a)) => a.clone(),
                _ => vec![Object::Reference(*id)],
            },
            Ok(Object::Array(a)) => a.clone(),
            _ => vec![],
        };
        let open = doc.add_object(Stream::new(Dictionary::new(), b"q\n".to_vec()));
        contents.insert(0, Object::Reference(open));
        doc.get_object_mut(page)?
            .as_dict_mut()?
            .set("Contents", contents);
        // ...and restore it before the stamp.
        let stamp = format!(
            "Q\nq BT /{font_name} 8 Tf 0.35 0.35 0.35 rg 1 0 0 1 {bx:.1} {by:.1} Tm ({text}) Tj ET \
             BT /{font_name} 8 Tf 0.35 0.35 0.35 rg 1 0 0 1 {bx:.1} {ty:.1} Tm ({text}) Tj ET Q\n",
            bx = x0 + 24.0,
            by = y0 + 12.0,
            ty = y1 - 18.0,
        );
        doc.add_page_contents(page, stamp.into_bytes())?;
    }
    let mut out = Vec::with_capacity(pdf.len() + 4096);
    doc.save_to(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::content::{Content, Operation};

    fn sample(pages: usize) -> Vec<u8> {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Courier",
        });
        let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
        let mut kids = Vec::new();
        for i in 0..pages {
            let content = Content {
                operations: vec![
                    Operation::new("BT", vec![]),
                    Operation::new("Tf", vec!["F1".into(), 24.into()]),
                    Operation::new("Td", vec![100.into(), 600.into()]),
                    Operation::new("Tj", vec![Object::string_literal(format!("Page body {i}"))]),
                    Operation::new("ET", vec![]),
                ],
            };
            let cid = doc.add_object(Stream::new(
                dictionary! {},
                content.encode().expect("encode"),
            ));
            let page = doc.add_object(dictionary! {
                "Type" => "Page", "Parent" => pages_id, "Contents" => cid,
            });
            kids.push(page.into());
        }
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => kids, "Count" => pages as i64,
                "Resources" => resources, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            }),
        );
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog);
        let mut out = Vec::new();
        doc.save_to(&mut out).expect("save");
        out
    }

    #[test]
    fn every_page_carries_the_line_and_keeps_its_own_text() {
        let pdf = sample(3);
        let out = stamp_pdf(&pdf, "Shared with a@example.com (2026-12-01)").expect("stamp");
        let doc = Document::load_mem(&out).expect("reload");
        let pages = doc.get_pages();
        assert_eq!(pages.len(), 3);
        for (n, id) in pages {
            let text = doc.extract_text(&[n]).expect("text");
            assert!(
                text.contains("Shared with a@example.com"),
                "page {n}: {text}"
            );
            assert!(
                text.contains(&format!("Page body {}", n - 1)),
                "page {n}: {text}"
            );
            let _ = id;
        }
    }

    #[test]
    fn what_is_not_a_pdf_is_refused_not_served_plain() {
        assert!(stamp_pdf(b"%PDF-1.4 not really", "x").is_err());
        assert!(stamp_pdf(b"hello", "x").is_err());
    }

    #[test]
    fn delimiters_and_non_ascii_cannot_break_out_of_the_string() {
        assert_eq!(literal("a(b)c\\d\u{e9}"), "a\\(b\\)c\\\\d?");
    }
}
