//! Вёрстка: a small layout layer over krilla. Content is laid out into pages of drawing
//! operations (text runs and rules) first; the PDF is written from them at the end, when
//! the number of pages is known (for the footers «Страница N из M · лист K»).
//!
//! - pages of the template's size with mirrored margins for two-sided printing: the inner
//!   (binding) margin is on the left of odd pages and on the right of even pages;
//! - headings kept with what follows them, paragraphs wrapped at word boundaries by the
//!   measured advances of their glyphs (a word longer than the line is cut by letters);
//! - tables with ruled cells whose text wraps, the header row repeated on every page the
//!   table runs onto, a row never split across pages;
//! - a running header and a footer with the page and sheet numbers on every page.

use krilla::configure::{Configuration, Validator};
use krilla::geom::{PathBuilder, Point};
use krilla::metadata::{DateTime, Metadata};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::{Document, SerializeSettings};

use super::fonts::{fonts, Face};
use super::template::{fill, PageStyle, MM};

/// One drawing operation of a page.
#[derive(Debug, Clone)]
enum Op {
    /// Text whose baseline starts at (x, y), y downwards from the top of the page.
    Text { x: f32, y: f32, size: f32, bold: bool, text: String },
    /// A rule from (x0, y0) to (x1, y1), `width` points thick.
    Line { x0: f32, y0: f32, x1: f32, y1: f32, width: f32 },
}

#[derive(Debug, Clone, Default)]
struct Page {
    ops: Vec<Op>,
    header: String,
}

/// How a cell's text sits in its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
}

/// A column of a table: its width in points.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub width: f32,
    pub align: Align,
}

impl Column {
    pub fn mm(width_mm: f32, align: Align) -> Column {
        Column { width: width_mm * MM, align }
    }
}

/// A table: columns, a header row (repeated on each page) and rows of texts.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<Column>,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns whose widths are given in points, the ones of width 0 sharing what is left
    /// of `total` equally.
    pub fn fit(mut columns: Vec<Column>, total: f32) -> Vec<Column> {
        let fixed: f32 = columns.iter().map(|c| c.width).sum();
        let free = columns.iter().filter(|c| c.width == 0.0).count();
        if free > 0 {
            let each = ((total - fixed) / free as f32).max(10.0 * MM);
            for c in columns.iter_mut().filter(|c| c.width == 0.0) {
                c.width = each;
            }
        }
        columns
    }
}

/// Splits `text` into lines no wider than `width` at `size`: at spaces, and inside a word
/// only when the word alone is wider than the line. Newlines in the text are kept.
pub fn wrap(face: &Face, text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
            if face.width(&candidate, size) <= width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if face.width(word, size) <= width {
                line = word.to_string();
                continue;
            }
            // A word wider than the line: cut by letters.
            for c in word.chars() {
                let mut next = line.clone();
                next.push(c);
                if face.width(&next, size) > width && !line.is_empty() {
                    lines.push(std::mem::replace(&mut line, c.to_string()));
                } else {
                    line = next;
                }
            }
        }
        lines.push(line);
    }
    lines
}

/// A document being laid out.
#[derive(Clone)]
pub struct Layout {
    pub style: PageStyle,
    pages: Vec<Page>,
    /// The baseline region's top: where the next block starts on the current page.
    y: f32,
    header: String,
}

impl Layout {
    pub fn new(style: &PageStyle) -> Layout {
        let mut layout = Layout { style: style.clone(), pages: Vec::new(), y: 0.0, header: String::new() };
        layout.new_page();
        layout
    }

    fn top(&self) -> f32 {
        // The running header's line and a gap below it.
        self.style.top_mm * MM + self.style.small_size * self.style.line_spacing + 3.0 * MM
    }

    fn bottom(&self) -> f32 {
        (self.style.height_mm - self.style.bottom_mm) * MM
    }

    /// The left edge of the text on page `index` (0-based): odd pages (index 0, 2, …) are
    /// rectos with the binding on the left.
    fn left_of(&self, index: usize) -> f32 {
        if index.is_multiple_of(2) {
            self.style.inner_mm * MM
        } else {
            self.style.outer_mm * MM
        }
    }

    fn left(&self) -> f32 {
        self.left_of(self.pages.len() - 1)
    }

    /// The width of the text area.
    pub fn width(&self) -> f32 {
        (self.style.width_mm - self.style.inner_mm - self.style.outer_mm) * MM
    }

    fn line_height(&self, size: f32) -> f32 {
        size * self.style.line_spacing
    }

    fn new_page(&mut self) {
        self.pages.push(Page { ops: Vec::new(), header: self.header.clone() });
        self.y = self.top();
    }

    /// The running header of this page and the next ones.
    pub fn set_header(&mut self, text: &str) {
        self.header = text.to_string();
        if let Some(p) = self.pages.last_mut() {
            p.header = self.header.clone();
        }
    }

    fn at_top(&self) -> bool {
        self.pages.last().is_none_or(|p| p.ops.is_empty())
    }

    /// The next block starts on a new page (nothing happens on an empty page).
    pub fn page_break(&mut self) {
        if !self.at_top() {
            self.new_page();
        }
    }

    /// The next block starts on a new odd page (a recto), leaving the back of the current
    /// sheet blank when needed.
    pub fn recto_break(&mut self) {
        self.page_break();
        if self.pages.len().is_multiple_of(2) {
            self.new_page();
        }
    }

    /// Pages so far.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// The 1-based number of the page the next block goes on.
    pub fn current_page(&self) -> usize {
        self.pages.len()
    }

    /// Starts a new page unless `height` fits below the cursor.
    fn ensure(&mut self, height: f32) {
        if self.y + height > self.bottom() && !self.at_top() {
            self.new_page();
        }
    }

    pub fn gap(&mut self, mm: f32) {
        self.y += mm * MM;
    }

    fn text_at(&mut self, x: f32, y: f32, size: f32, bold: bool, text: String) {
        if !text.trim().is_empty() {
            self.pages.last_mut().expect("a page").ops.push(Op::Text { x, y, size, bold, text });
        }
    }

    fn line_at(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, width: f32) {
        self.pages.last_mut().expect("a page").ops.push(Op::Line { x0, y0, x1, y1, width });
    }

    /// A block of wrapped text; `keep` extra points must fit below its first line (a heading
    /// keeps with what follows).
    pub fn text(&mut self, text: &str, size: f32, bold: bool, align: Align, keep: f32) {
        let face = fonts().face(bold);
        let width = self.width();
        let lh = self.line_height(size);
        let lines = wrap(face, text, size, width);
        self.ensure(lh * lines.len().min(3) as f32 + keep);
        for line in lines {
            self.ensure(lh);
            let x = match align {
                Align::Left => self.left(),
                Align::Center => self.left() + (width - face.width(&line, size)) / 2.0,
            };
            let y = self.y + size;
            self.text_at(x, y, size, bold, line);
            self.y += lh;
        }
    }

    /// The document's title (centred, bold).
    pub fn title(&mut self, text: &str) {
        let size = self.style.title_size;
        self.text(text, size, true, Align::Center, 0.0);
        self.gap(2.0);
    }

    /// A heading: level 1 a section, level 2 a subsection; kept with the next lines.
    pub fn heading(&mut self, text: &str, level: u8) {
        let size = if level <= 1 { self.style.heading_size } else { self.style.subheading_size };
        self.gap(if level <= 1 { 3.0 } else { 2.0 });
        let keep = self.line_height(self.style.table_font_size) * 4.0 + 4.0 * MM;
        self.text(text, size, true, Align::Left, keep);
        self.gap(1.0);
    }

    pub fn paragraph(&mut self, text: &str) {
        let size = self.style.font_size;
        self.text(text, size, false, Align::Left, 0.0);
        self.gap(1.0);
    }

    /// A table; the header row is drawn again at the top of each page it continues on.
    pub fn table(&mut self, table: &Table) {
        let size = self.style.table_font_size;
        let pad = self.style.cell_padding_mm * MM;
        let lh = self.line_height(size);
        let wrap_row = |cells: &[String], bold: bool| -> Vec<Vec<String>> {
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let text = cells.get(i).map(String::as_str).unwrap_or("");
                    wrap(fonts().face(bold), text, size, c.width - 2.0 * pad)
                })
                .collect()
        };
        let height =
            |cells: &[Vec<String>]| cells.iter().map(Vec::len).max().unwrap_or(1).max(1) as f32 * lh + 2.0 * pad;
        let header = wrap_row(&table.header, true);
        let header_height = if table.header.is_empty() { 0.0 } else { height(&header) };
        let first = table.rows.first().map(|r| height(&wrap_row(r, false))).unwrap_or(0.0);
        self.ensure(header_height + first);
        if header_height > 0.0 {
            self.row(table, &header, header_height, true);
        }
        for row in &table.rows {
            let cells = wrap_row(row, false);
            let h = height(&cells);
            if self.y + h > self.bottom() {
                self.new_page();
                if header_height > 0.0 {
                    self.row(table, &header, header_height, true);
                }
            }
            self.row(table, &cells, h, false);
        }
        self.gap(2.0);
    }

    fn row(&mut self, table: &Table, cells: &[Vec<String>], h: f32, bold: bool) {
        let size = self.style.table_font_size;
        let pad = self.style.cell_padding_mm * MM;
        let lh = self.line_height(size);
        let face = fonts().face(bold);
        let (top, rule) = (self.y, 0.4);
        let mut x = self.left();
        let right = x + table.columns.iter().map(|c| c.width).sum::<f32>();
        self.line_at(x, top, right, top, rule);
        self.line_at(x, top + h, right, top + h, rule);
        for (column, lines) in table.columns.iter().zip(cells) {
            self.line_at(x, top, x, top + h, rule);
            for (i, line) in lines.iter().enumerate() {
                let tx = match column.align {
                    Align::Left => x + pad,
                    Align::Center => x + (column.width - face.width(line, size)) / 2.0,
                };
                self.text_at(tx, top + pad + size * 0.9 + i as f32 * lh, size, bold, line.clone());
            }
            x += column.width;
        }
        self.line_at(right, top, right, top + h, rule);
        self.y += h;
    }

    /// Appends the pages of `other` after these (a title page before the contents); an
    /// empty last page here is dropped. The parity of `other`'s pages is kept when this has
    /// an even number of pages.
    pub fn append(&mut self, other: Layout) {
        if self.at_top() {
            self.pages.pop();
        }
        self.pages.extend(other.pages);
        self.y = other.y;
    }

    /// The PDF (PDF/A-2u): every page with its running header and footer. `footer` is the
    /// template's footer text; `title` goes into the document's metadata.
    pub fn finish(mut self, title: &str, footer: &str, date: chrono::NaiveDate) -> anyhow::Result<Vec<u8>> {
        use chrono::Datelike;
        let pages = self.pages.len();
        let sheets = pages.div_ceil(2);
        let small = self.style.small_size;
        let width = self.width();
        for index in 0..pages {
            let left = self.left_of(index);
            let footer = fill(
                footer,
                &[
                    ("page", (index + 1).to_string().as_str()),
                    ("pages", pages.to_string().as_str()),
                    ("sheet", (index / 2 + 1).to_string().as_str()),
                    ("sheets", sheets.to_string().as_str()),
                ],
            );
            // The footer at the outer edge (right on odd pages, left on even ones).
            let face = &fonts().regular;
            let fx = if index.is_multiple_of(2) { left + width - face.width(&footer, small) } else { left };
            let fy = (self.style.height_mm - self.style.bottom_mm) * MM + 5.0 * MM + small;
            let header = self.pages[index].header.clone();
            let page = &mut self.pages[index];
            page.ops.push(Op::Text { x: fx, y: fy, size: small, bold: false, text: footer });
            if !header.is_empty() {
                let hy = self.style.top_mm * MM + small;
                page.ops.push(Op::Text { x: left, y: hy, size: small, bold: false, text: header });
                let ry = hy + small * 0.5;
                page.ops.push(Op::Line { x0: left, y0: ry, x1: left + width, y1: ry, width: 0.3 });
            }
        }
        let settings = SerializeSettings {
            configuration: Configuration::new_with_validator(Validator::A2_U),
            enable_tagging: false,
            ..SerializeSettings::default()
        };
        let mut document = Document::new_with(settings);
        document.set_metadata(
            Metadata::new()
                .title(title.to_string())
                .language("ru".to_string())
                .creator("ejgate".to_string())
                .producer(format!("ejgate {} (krilla)", env!("CARGO_PKG_VERSION")))
                .creation_date(DateTime::new(date.year() as u16).month(date.month() as u8).day(date.day() as u8)),
        );
        let (w, h) = (self.style.width_mm * MM, self.style.height_mm * MM);
        for page in &self.pages {
            let mut p = document.start_page_with(
                PageSettings::from_wh(w, h).ok_or_else(|| anyhow::anyhow!("the page size is not valid"))?,
            );
            let mut surface = p.surface();
            surface.set_fill(Some(Fill::default()));
            surface.set_stroke(None);
            for op in &page.ops {
                if let Op::Text { x, y, size, bold, text } = op {
                    let face = fonts().face(*bold);
                    surface.draw_glyphs(
                        Point::from_xy(*x, *y),
                        face.glyphs(text).as_slice(),
                        face.font.clone(),
                        text,
                        *size,
                        false,
                    );
                }
            }
            // The rules, one path per thickness.
            let mut widths: Vec<f32> = page
                .ops
                .iter()
                .filter_map(|op| if let Op::Line { width, .. } = op { Some(*width) } else { None })
                .collect();
            widths.sort_by(f32::total_cmp);
            widths.dedup();
            surface.set_fill(None);
            for width in widths {
                let mut path = PathBuilder::new();
                for op in &page.ops {
                    if let Op::Line { x0, y0, x1, y1, width: w } = op {
                        if *w == width {
                            path.move_to(*x0, *y0);
                            path.line_to(*x1, *y1);
                        }
                    }
                }
                if let Some(path) = path.finish() {
                    surface.set_stroke(Some(Stroke { width, ..Stroke::default() }));
                    surface.draw_path(&path);
                }
            }
            surface.finish();
            p.finish();
        }
        document.finish().map_err(|e| anyhow::anyhow!("the PDF cannot be written: {e:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::template::Template;

    #[test]
    fn lines_wrap_within_the_width_and_long_words_are_cut() {
        let face = &fonts().regular;
        let text = "Повторить правила правописания безударных гласных в корне слова";
        let width = face.width("Повторить правила", 10.0) + 1.0;
        let lines = wrap(face, text, 10.0, width);
        assert_eq!(lines[0], "Повторить правила");
        assert!(lines.iter().all(|l| face.width(l, 10.0) <= width), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        let cut = wrap(face, "Обществознание", 10.0, face.width("Общество", 10.0) + 0.5);
        assert_eq!(cut, ["Общество", "знание"]);
    }

    #[test]
    fn margins_mirror_and_the_header_repeats_on_each_page_of_a_table() {
        let style = Template::builtin().page;
        let mut l = Layout::new(&style);
        let header = vec!["№".to_string(), "Фамилия".to_string()];
        let rows: Vec<Vec<String>> = (1..=300).map(|i| vec![i.to_string(), format!("Иванов {i}")]).collect();
        let columns = vec![Column::mm(10.0, Align::Center), Column::mm(60.0, Align::Left)];
        l.table(&Table { columns, header, rows });
        assert!(l.page_count() >= 3);
        for (i, page) in l.pages.iter().enumerate() {
            let headers =
                page.ops.iter().filter(|o| matches!(o, Op::Text { bold: true, text, .. } if text == "Фамилия"));
            assert_eq!(headers.count(), 1, "page {}", i + 1);
            let left = page.ops.iter().filter_map(|o| if let Op::Line { x0, .. } = o { Some(*x0) } else { None });
            let left = left.fold(f32::MAX, f32::min);
            let expected = if i.is_multiple_of(2) { style.inner_mm } else { style.outer_mm } * MM;
            assert!((left - expected).abs() < 0.01, "page {}: {left} vs {expected}", i + 1);
        }
        // every row once, in order
        let names: Vec<String> = l
            .pages
            .iter()
            .flat_map(|p| &p.ops)
            .filter_map(|o| match o {
                Op::Text { text, bold: false, .. } if text.starts_with("Иванов") => Some(text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(names.len(), 300);
        assert_eq!(names[299], "Иванов 300");
    }
}
