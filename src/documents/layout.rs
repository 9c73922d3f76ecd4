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
//! - a running header and a footer with the page and sheet numbers on every page;
//! - bar charts (диаграммы) drawn with filled paths: the charts of a report's XLSX, drawn
//!   again for the PDF ([`BarChart`]).

use krilla::color::rgb;
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
    /// A filled rectangle (a bar of a chart, a key of its legend), top left at (x, y).
    Rect { x: f32, y: f32, w: f32, h: f32, rgb: [u8; 3] },
}

/// The colours of a chart's series, in order: the accents of the theme the XLSX workbooks
/// carry (rust_xlsxwriter's Office 2007 theme), so that a chart has the same colours in
/// both files.
pub const PALETTE: [[u8; 3]; 6] = [
    [0x4F, 0x81, 0xBD],
    [0xC0, 0x50, 0x4D],
    [0x9B, 0xBB, 0x59],
    [0x80, 0x64, 0xA2],
    [0x4B, 0xAC, 0xC6],
    [0xF7, 0x96, 0x46],
];

/// A series of a bar chart: its name (in the legend) and a value per category (`None`:
/// no value, drawn as «—»).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// A bar chart with bars across (линейчатая диаграмма): a band per category, in the
/// categories' order from the top, a bar per series in each band, the value written after
/// the bar, a scale under the bars and a legend under the title.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
    /// The values are shares (0–1): the scale runs to 100 % and values are written in per cent
    pub percent: bool,
}

impl BarChart {
    /// The value at the end of the scale: 100 % for shares, else the largest value rounded
    /// up to 1, 2, 2.5 or 5 times a power of ten (1 when there is no positive value).
    pub fn scale_max(&self) -> f64 {
        if self.percent {
            return 1.0;
        }
        let max = self.series.iter().flat_map(|s| s.values.iter().flatten()).fold(0.0f64, |a, b| a.max(*b));
        if max <= 0.0 || !max.is_finite() {
            return 1.0;
        }
        let power = 10f64.powf(max.log10().floor());
        [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * power).find(|v| *v >= max).unwrap_or(10.0 * power)
    }

    /// A value as the chart writes it: per cent with one decimal for shares, otherwise at
    /// most two decimals.
    pub fn label(&self, v: f64) -> String {
        if self.percent {
            format!("{:.1} %", v * 100.0)
        } else if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v:.2}")
        }
    }

    /// A mark of the scale as written under it (whole per cent for shares).
    fn tick(&self, v: f64) -> String {
        if self.percent {
            format!("{:.0} %", v * 100.0)
        } else {
            let s = format!("{v:.2}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
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

    fn rect_at(&mut self, x: f32, y: f32, w: f32, h: f32, rgb: [u8; 3]) {
        if w > 0.0 && h > 0.0 {
            self.pages.last_mut().expect("a page").ops.push(Op::Rect { x, y, w, h, rgb });
        }
    }

    /// A bar chart across the text width. Its title and legend are kept with the first
    /// bands; when the bands run onto the next page, the title (with «(продолжение)»), the
    /// legend and the scale are drawn again there.
    pub fn bar_chart(&mut self, chart: &BarChart) {
        let size = self.style.table_font_size;
        let lh = self.line_height(size);
        let face = &fonts().regular;
        let width = self.width();
        let max = chart.scale_max();
        // The names of the categories on the left (at most a third of the width), the
        // values after the bars on the right.
        let label_w =
            (chart.categories.iter().map(|c| face.width(c, size)).fold(0.0, f32::max) + 2.0 * MM).min(width / 3.0);
        let longest_value = chart
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .map(|v| face.width(&chart.label(*v), size))
            .fold(face.width("—", size), f32::max);
        let plot_w = (width - label_w - longest_value - 2.0 * MM).max(20.0 * MM);
        let bar_h = size * 1.1;
        let bars = chart.series.len().max(1) as f32;
        let bands: Vec<(Vec<String>, f32)> = chart
            .categories
            .iter()
            .map(|c| {
                let lines = wrap(face, c, size, label_w - 2.0 * MM);
                let h = (bars * bar_h).max(lines.len() as f32 * lh) + 0.8 * bar_h;
                (lines, h)
            })
            .collect();
        let scale_h = size + 2.0 * MM;
        let ticks = 4;
        let mut index = 0;
        let mut continued = false;
        // Once per page the bands run onto (once for a chart without categories).
        loop {
            let title =
                if continued { format!("{} (продолжение)", chart.title) } else { chart.title.clone() };
            let first = bands.get(index).map(|b| b.1).unwrap_or(0.0);
            self.ensure(self.line_height(self.style.subheading_size) * 2.0 + lh * 2.0 + first + scale_h);
            let heading = self.style.subheading_size;
            self.text(&title, heading, true, Align::Left, 0.0);
            self.gap(1.0);
            // The legend: a key in the series' colour and its name, as many to a line as fit.
            let mut x = self.left();
            let right = self.left() + width;
            for (i, s) in chart.series.iter().enumerate() {
                let w = size + 1.0 * MM + face.width(&s.name, size) + 4.0 * MM;
                if x + w > right && x > self.left() {
                    x = self.left();
                    self.y += lh;
                }
                let y = self.y;
                self.rect_at(x, y + size * 0.1, size * 0.8, size * 0.8, PALETTE[i % PALETTE.len()]);
                self.text_at(x + size + 1.0 * MM, y + size * 0.9, size, false, s.name.clone());
                x += w;
            }
            self.y += lh + 1.0 * MM;
            let plot_x = self.left() + label_w;
            let top = self.y;
            // The bands that fit above the scale on this page (at least one).
            while let Some((lines, h)) = bands.get(index) {
                if self.y + h + scale_h > self.bottom() && self.y > top {
                    break;
                }
                let y = self.y;
                for (i, line) in lines.iter().enumerate() {
                    self.text_at(self.left(), y + 0.4 * bar_h + size * 0.9 + i as f32 * lh, size, false, line.clone());
                }
                for (i, s) in chart.series.iter().enumerate() {
                    let by = y + 0.4 * bar_h + i as f32 * bar_h;
                    match s.values.get(index).copied().flatten() {
                        Some(v) => {
                            let w = (v.max(0.0) / max).min(1.0) as f32 * plot_w;
                            self.rect_at(plot_x, by + 0.1 * bar_h, w, 0.8 * bar_h, PALETTE[i % PALETTE.len()]);
                            self.text_at(plot_x + w + 1.0 * MM, by + size * 0.85, size, false, chart.label(v));
                        }
                        None => self.text_at(plot_x + 1.0 * MM, by + size * 0.85, size, false, "—".to_string()),
                    }
                }
                self.y += h;
                index += 1;
            }
            // The scale: the axis, thin lines across the bands and the marks under them.
            let bottom = self.y;
            self.line_at(plot_x, top, plot_x, bottom, 0.5);
            for t in 0..=ticks {
                let v = max * t as f64 / ticks as f64;
                let x = plot_x + plot_w * t as f32 / ticks as f32;
                if t > 0 {
                    self.line_at(x, top, x, bottom, 0.15);
                }
                let label = chart.tick(v);
                let lx = x - face.width(&label, size) / 2.0;
                self.text_at(lx, bottom + 1.0 * MM + size, size, false, label);
            }
            self.y = bottom + scale_h;
            if index >= bands.len() {
                break;
            }
            self.new_page();
            continued = true;
        }
        self.gap(2.0);
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
            surface.set_stroke(None);
            // The bars first (the texts are written over them), one path per colour.
            let mut colours: Vec<[u8; 3]> = page
                .ops
                .iter()
                .filter_map(|op| if let Op::Rect { rgb, .. } = op { Some(*rgb) } else { None })
                .collect();
            colours.sort();
            colours.dedup();
            for colour in colours {
                let mut path = PathBuilder::new();
                for op in &page.ops {
                    if let Op::Rect { x, y, w, h, rgb } = op {
                        if *rgb == colour {
                            if let Some(r) = krilla::geom::Rect::from_xywh(*x, *y, *w, *h) {
                                path.push_rect(r);
                            }
                        }
                    }
                }
                if let Some(path) = path.finish() {
                    let [r, g, b] = colour;
                    surface.set_fill(Some(Fill { paint: rgb::Color::new(r, g, b).into(), ..Fill::default() }));
                    surface.draw_path(&path);
                }
            }
            surface.set_fill(Some(Fill::default()));
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

    #[test]
    fn a_bar_chart_draws_bars_in_proportion_and_continues_on_the_next_page() {
        let style = Template::builtin().page;
        let chart = BarChart {
            title: "Доля уроков с темой".into(),
            categories: (1..=60).map(|i| format!("Школа {i}")).collect(),
            series: vec![
                Series { name: "С темой".into(), values: (1..=60).map(|i| Some(i as f64 / 60.0)).collect() },
                Series {
                    name: "С заданием".into(), values: (1..=60).map(|i| (i != 7).then_some(0.5)).collect()
                },
            ],
            percent: true,
        };
        let mut l = Layout::new(&style);
        l.bar_chart(&chart);
        assert!(l.page_count() >= 2, "60 schools of two bars do not fit one page");
        let texts = |p: &Page| -> Vec<String> {
            p.ops.iter().filter_map(|o| if let Op::Text { text, .. } = o { Some(text.clone()) } else { None }).collect()
        };
        // the title on the first page, «(продолжение)» on the next, the legend and the
        // scale on each
        assert!(texts(&l.pages[0]).contains(&"Доля уроков с темой".to_string()));
        assert!(texts(&l.pages[1]).contains(&"Доля уроков с темой (продолжение)".to_string()));
        for p in &l.pages {
            for t in ["С темой", "С заданием", "0 %", "50 %", "100 %"] {
                assert!(texts(p).contains(&t.to_string()), "{t}");
            }
        }
        // one bar per value, in the series' colour, as long as its share of the scale
        let bars: Vec<(f32, [u8; 3])> = l
            .pages
            .iter()
            .flat_map(|p| &p.ops)
            // the legend's keys are 0.8 of the type size high, the bars 0.88
            .filter_map(|o| match o {
                Op::Rect { w, h, rgb, .. } if *h > 0.85 * style.table_font_size => Some((*w, *rgb)),
                _ => None,
            })
            .collect();
        let first: Vec<f32> = bars.iter().filter(|b| b.1 == PALETTE[0]).map(|b| b.0).collect();
        let second: Vec<f32> = bars.iter().filter(|b| b.1 == PALETTE[1]).map(|b| b.0).collect();
        assert_eq!(first.len(), 60);
        assert_eq!(second.len(), 59, "no bar where there is no value");
        let full = first[59];
        for (i, w) in first.iter().enumerate() {
            assert!((w / full - (i + 1) as f32 / 60.0).abs() < 1e-4, "bar {i}: {w} of {full}");
        }
        assert!(second.iter().all(|w| (w / full - 0.5).abs() < 1e-4));
        // every school once, in order, and the values written after the bars
        let names: Vec<String> = l.pages.iter().flat_map(texts).filter(|t| t.starts_with("Школа ")).collect();
        assert_eq!(names, (1..=60).map(|i| format!("Школа {i}")).collect::<Vec<_>>());
        let all: Vec<String> = l.pages.iter().flat_map(texts).collect();
        assert!(all.contains(&"100.0 %".to_string()) && all.contains(&"—".to_string()));
    }

    #[test]
    fn a_scale_ends_at_a_round_value_above_the_largest() {
        let chart = |values: &[f64]| BarChart {
            series: vec![Series { name: "n".into(), values: values.iter().map(|v| Some(*v)).collect() }],
            ..BarChart::default()
        };
        assert_eq!(chart(&[3.0, 7.2]).scale_max(), 10.0);
        assert_eq!(chart(&[0.3, 1.7]).scale_max(), 2.0);
        assert_eq!(chart(&[12.0, 21.0]).scale_max(), 25.0);
        assert_eq!(chart(&[40.0]).scale_max(), 50.0);
        assert_eq!(chart(&[0.0]).scale_max(), 1.0);
        assert_eq!(BarChart { percent: true, ..chart(&[0.2]) }.scale_max(), 1.0);
    }
}
