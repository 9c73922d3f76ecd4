//! XML exchange files: a streaming reader (quick-xml) that knows the line of every element,
//! and a writer that always gives the same bytes for the same rows.
//!
//! Shape: `<Root УчебныйГод="2025/2026"><Section><Row><Field>text</Field>…</Row>…</Section>…</Root>`
//! with the names of the layout. Encoding: UTF-8 (a BOM is allowed); a file whose XML
//! declaration names `windows-1251` is decoded from it. A file whose bytes do not match
//! what it declares (or UTF-8 when it declares nothing) is refused with the line of the
//! first wrong byte; so is a file that is not well-formed, at the line where the parser
//! stopped. Those two are reported alone: the rows after them cannot be trusted.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

use super::layout::{KindLayout, Layout, Section};
use super::{Location, Problem, ProblemCode, RawCell, RawDoc, RawRow, RawSection};

/// Byte offsets of line starts, to turn the parser's positions into line numbers.
struct Lines(Vec<usize>);

impl Lines {
    fn of(text: &[u8]) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1));
        Lines(starts)
    }
    /// The 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|s| *s <= offset)
    }
}

/// The `encoding` pseudo-attribute of the XML declaration, lower-cased.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(b"<?xml") {
        return None;
    }
    let end = bytes.windows(2).position(|w| w == b"?>")?;
    let decl = String::from_utf8_lossy(&bytes[..end]);
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].trim().to_lowercase())
}

/// Whether bytes that are not UTF-8 read as Russian text in Windows-1251: mostly Cyrillic
/// letters among the bytes above 0x7F.
fn looks_like_cp1251(bytes: &[u8]) -> bool {
    let high: Vec<u8> = bytes.iter().copied().filter(|b| *b >= 0x80).collect();
    let cyrillic = high.iter().filter(|b| **b >= 0xC0 || **b == 0xA8 || **b == 0xB8).count();
    !high.is_empty() && cyrillic * 10 >= high.len() * 8
}

/// Turns the file's bytes into text, or says why they cannot be trusted.
fn decode(bytes: &[u8]) -> Result<String, Problem> {
    let lines = Lines::of(bytes);
    let at = |offset: usize, what: &str| Location::Xml { line: lines.line(offset), element: what.to_string() };
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(Problem::new(
            at(0, "?xml"),
            ProblemCode::Encoding,
            "the file is UTF-16: save it as UTF-8 (or Windows-1251 with encoding=\"windows-1251\" in the XML declaration)",
        ));
    }
    let body = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let declared = declared_encoding(body);
    match declared.as_deref() {
        None | Some("utf-8") | Some("utf8") => match std::str::from_utf8(body) {
            Ok(text) => Ok(text.to_string()),
            Err(e) => {
                let offset = e.valid_up_to() + (bytes.len() - body.len());
                let said = match declared {
                    Some(_) => "declares UTF-8",
                    None => "declares no encoding (so it must be UTF-8)",
                };
                let message = if looks_like_cp1251(body) {
                    format!(
                        "the file {said} but is written in Windows-1251 (first non-UTF-8 byte at offset {offset}): add encoding=\"windows-1251\" to the XML declaration or save the file as UTF-8"
                    )
                } else {
                    format!("the file {said} but is not valid UTF-8 (first bad byte at offset {offset})")
                };
                Err(Problem::new(at(offset, "?xml"), ProblemCode::Encoding, message))
            }
        },
        Some("windows-1251") | Some("cp1251") | Some("cp-1251") => {
            if let Ok(text) = std::str::from_utf8(body) {
                if let Some(offset) = text.bytes().position(|b| b >= 0x80) {
                    return Err(Problem::new(
                        at(offset, "?xml"),
                        ProblemCode::Encoding,
                        "the file declares windows-1251 but its text is UTF-8: change the declaration to encoding=\"UTF-8\"",
                    ));
                }
            }
            let (text, _, bad) = encoding_rs::WINDOWS_1251.decode(body);
            if bad {
                let offset = body.iter().position(|b| *b == 0x98).unwrap_or(0);
                return Err(Problem::new(
                    at(offset, "?xml"),
                    ProblemCode::Encoding,
                    "the file holds a byte Windows-1251 does not define",
                ));
            }
            Ok(text.into_owned())
        }
        Some(other) => Err(Problem::new(
            at(0, "?xml"),
            ProblemCode::Encoding,
            format!("the encoding «{other}» is not supported: use UTF-8 (or windows-1251)"),
        )),
    }
}

fn name_of(e: &BytesStart) -> String {
    e.name().as_ref().to_string()
}

/// Where the reader is inside the document.
enum Frame<'l> {
    Root,
    Section(&'l Section),
    Row(&'l Section),
    Field {
        field: String,
    },
    /// An element that is reported once and skipped with everything inside it.
    Skip,
}

/// Reads an XML exchange file. Encoding, well-formedness and root-element problems stop
/// the reading (`None`); unknown elements are reported and skipped, the rest is read.
pub fn read(bytes: &[u8], layout: &Layout) -> (Option<RawDoc>, Vec<Problem>) {
    let text = match decode(bytes) {
        Ok(t) => t,
        Err(p) => return (None, vec![p]),
    };
    let lines = Lines::of(text.as_bytes());
    let mut reader = Reader::from_str(&text);
    reader.config_mut().check_end_names = true;
    let mut problems = Vec::new();
    let mut stack: Vec<(Frame, String, usize)> = Vec::new();
    let mut doc: Option<RawDoc> = None;
    let mut kind_layout: Option<&KindLayout> = None;
    let mut row: Option<RawRow> = None;
    let mut value = String::new();
    let loc = |line: usize, element: &str| Location::Xml { line, element: element.to_string() };

    loop {
        let start = reader.buffer_position() as usize;
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                let line = lines.line(reader.error_position() as usize);
                let element = stack.last().map(|s| s.1.clone()).unwrap_or_default();
                problems.push(Problem::new(
                    loc(line, &element),
                    ProblemCode::Malformed,
                    format!("the XML is not well-formed: {e}"),
                ));
                return (None, problems);
            }
        };
        let line = lines.line(start);
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = name_of(e);
                let frame = match stack.last().map(|f| &f.0) {
                    None => {
                        if doc.is_some() {
                            problems.push(Problem::new(
                                loc(line, &name),
                                ProblemCode::Malformed,
                                "a second root element".to_string(),
                            ));
                            return (None, problems);
                        }
                        let Some(kind) = layout.kind_of_root(&name) else {
                            let roots: Vec<String> = super::ExchangeKind::ALL
                                .iter()
                                .map(|k| format!("<{}>", layout.kind(*k).xml_root))
                                .collect();
                            problems.push(Problem::new(
                                loc(line, &name),
                                ProblemCode::WrongRoot,
                                format!("the root element is <{name}>: expected one of {}", roots.join(", ")),
                            ));
                            return (None, problems);
                        };
                        kind_layout = Some(layout.kind(kind));
                        let mut year = None;
                        for a in e.attributes().flatten() {
                            if a.key.as_ref() == layout.xml_year_attribute.as_str() {
                                let v = a
                                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                    .map(|v| v.into_owned())
                                    .unwrap_or_default();
                                year = Some((v, loc(line, &name)));
                            }
                        }
                        let sections = layout
                            .kind(kind)
                            .sections
                            .iter()
                            .map(|s| RawSection { key: s.key.clone(), rows: Vec::new() })
                            .collect();
                        doc = Some(RawDoc { kind, year, year_location: loc(line, &name), sections });
                        Frame::Root
                    }
                    Some(Frame::Root) => {
                        match kind_layout.and_then(|k| k.sections.iter().find(|s| s.xml_container == name)) {
                            Some(s) => Frame::Section(s),
                            None => {
                                problems.push(Problem::new(
                                    loc(line, &name),
                                    ProblemCode::UnknownField,
                                    format!("unknown element <{name}> (the layout has no such section)"),
                                ));
                                Frame::Skip
                            }
                        }
                    }
                    Some(Frame::Section(s)) => {
                        if name == s.xml_row {
                            row = Some(RawRow { location: loc(line, &name), cells: Vec::new() });
                            Frame::Row(s)
                        } else {
                            problems.push(Problem::new(
                                loc(line, &name),
                                ProblemCode::UnknownField,
                                format!("unknown element <{name}> in <{}> (expected <{}>)", s.xml_container, s.xml_row),
                            ));
                            Frame::Skip
                        }
                    }
                    Some(Frame::Row(s)) => match s.columns.iter().find(|c| c.xml == name) {
                        Some(c) => {
                            let r = row.as_ref().expect("a row is open");
                            if r.cells.iter().any(|x| x.field == c.field) {
                                problems.push(Problem::new(
                                    loc(line, &name),
                                    ProblemCode::Structure,
                                    format!("<{name}> is given twice in one <{}>", s.xml_row),
                                ));
                                Frame::Skip
                            } else {
                                value.clear();
                                Frame::Field { field: c.field.clone() }
                            }
                        }
                        None => {
                            problems.push(Problem::new(
                                loc(line, &name),
                                ProblemCode::UnknownField,
                                format!("unknown element <{name}> in <{}>", s.xml_row),
                            ));
                            Frame::Skip
                        }
                    },
                    Some(Frame::Field { .. }) => {
                        problems.push(Problem::new(
                            loc(line, &name),
                            ProblemCode::Structure,
                            format!("an element <{name}> inside a field: a field holds text only"),
                        ));
                        Frame::Skip
                    }
                    Some(Frame::Skip) => Frame::Skip,
                };
                stack.push((frame, name, line));
                if empty {
                    close(&mut stack, &mut doc, &mut row, &mut value);
                }
            }
            Event::End(_) => close(&mut stack, &mut doc, &mut row, &mut value),
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last() {
                    Some((Frame::Field { .. }, _, _)) => value.push_str(&content),
                    Some((Frame::Skip, _, _)) => {}
                    Some((_, name, _)) if !content.trim().is_empty() => problems.push(Problem::new(
                        loc(line, name),
                        ProblemCode::Structure,
                        format!("text «{}» directly inside <{name}>", content.trim()),
                    )),
                    _ => {}
                }
            }
            Event::CData(t) => {
                if let Some((Frame::Field { .. }, _, _)) = stack.last() {
                    value.push_str(&t);
                }
            }
            Event::GeneralRef(r) => {
                let ch = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    Ok(None) => match &*r {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        _ => None,
                    },
                    Err(_) => None,
                };
                let element = stack.last().map(|s| s.1.clone()).unwrap_or_default();
                match ch {
                    Some(c) => {
                        if let Some((Frame::Field { .. }, _, _)) = stack.last() {
                            value.push(c);
                        }
                    }
                    None => {
                        problems.push(Problem::new(
                            loc(line, &element),
                            ProblemCode::Malformed,
                            format!("the XML is not well-formed: unknown entity &{};", &*r),
                        ));
                        return (None, problems);
                    }
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if let Some((_, name, line)) = stack.last() {
        problems.push(Problem::new(
            loc(*line, name),
            ProblemCode::Malformed,
            format!("the XML is not well-formed: the file ends inside <{name}> opened at line {line}"),
        ));
        return (None, problems);
    }
    if doc.is_none() {
        problems.push(Problem::new(Location::File, ProblemCode::Malformed, "the file holds no XML element"));
    }
    (doc, problems)
}

fn close(
    stack: &mut Vec<(Frame, String, usize)>,
    doc: &mut Option<RawDoc>,
    row: &mut Option<RawRow>,
    value: &mut String,
) {
    let Some((frame, name, line)) = stack.pop() else { return };
    match frame {
        Frame::Field { field } => {
            if let Some(r) = row.as_mut() {
                r.cells.push(RawCell {
                    field,
                    value: value.trim().to_string(),
                    location: Location::Xml { line, element: name },
                });
            }
            value.clear();
        }
        Frame::Row(s) => {
            if let (Some(r), Some(d)) = (row.take(), doc.as_mut()) {
                if let Some(sec) = d.sections.iter_mut().find(|x| x.key == s.key) {
                    sec.rows.push(r);
                }
            }
        }
        Frame::Root | Frame::Section(_) | Frame::Skip => {}
    }
}

/// Writes rows as XML (UTF-8, two-space indent, one element per non-empty field, fields in
/// the layout's order). The same rows always give the same bytes.
pub fn write(raw: &RawDoc, layout: &Layout) -> Vec<u8> {
    let kind = layout.kind(raw.kind);
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let io = "writing to memory cannot fail";
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None))).expect(io);
    let mut root = BytesStart::new(kind.xml_root.as_str());
    if let Some((year, _)) = &raw.year {
        root.push_attribute((layout.xml_year_attribute.as_str(), year.as_str()));
    }
    w.write_event(Event::Start(root)).expect(io);
    for section in &kind.sections {
        let rows = raw.section(&section.key);
        if rows.is_empty() {
            w.write_event(Event::Empty(BytesStart::new(section.xml_container.as_str()))).expect(io);
            continue;
        }
        w.write_event(Event::Start(BytesStart::new(section.xml_container.as_str()))).expect(io);
        for row in rows {
            w.write_event(Event::Start(BytesStart::new(section.xml_row.as_str()))).expect(io);
            for col in &section.columns {
                if let Some(cell) = row.cell(&col.field) {
                    w.create_element(col.xml.as_str()).write_text_content(BytesText::new(cell.value.trim())).expect(io);
                }
            }
            w.write_event(Event::End(BytesEnd::new(section.xml_row.as_str()))).expect(io);
        }
        w.write_event(Event::End(BytesEnd::new(section.xml_container.as_str()))).expect(io);
    }
    w.write_event(Event::End(BytesEnd::new(kind.xml_root.as_str()))).expect(io);
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_from_one() {
        let l = Lines::of(b"a\nbc\n\nd");
        assert_eq!((l.line(0), l.line(2), l.line(5), l.line(6)), (1, 2, 3, 4));
    }

    #[test]
    fn encodings_are_checked_against_the_declaration() {
        let utf8 = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>Иванов</a>";
        assert!(decode(utf8.as_bytes()).is_ok());
        let (cp, _, _) = encoding_rs::WINDOWS_1251.encode("<?xml version=\"1.0\"?>\n\n<a>Иванов</a>");
        let e = decode(&cp).unwrap_err();
        assert_eq!(e.code, ProblemCode::Encoding);
        assert!(e.message.contains("Windows-1251"), "{}", e.message);
        assert_eq!(e.location, Location::Xml { line: 3, element: "?xml".into() });
        let (cp, _, _) =
            encoding_rs::WINDOWS_1251.encode("<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>Иванов</a>");
        assert!(decode(&cp).unwrap().contains("Иванов"));
        let lying = "<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>Иванов</a>";
        assert!(decode(lying.as_bytes()).unwrap_err().message.contains("its text is UTF-8"));
    }
}
