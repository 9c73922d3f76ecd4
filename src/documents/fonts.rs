//! Шрифты: DejaVu Sans Condensed, regular and bold, compiled into the binary
//! (`assets/fonts`, Bitstream Vera licence, from Debian's fonts-dejavu-extra): Cyrillic,
//! Latin and the signs a journal needs, narrow enough for a marks grid. Glyph ids and
//! advances are read once with skrifa (the font reader krilla itself uses, so no crate is
//! added for it); text is measured by the sum of glyph advances (no kerning, no shaping:
//! Cyrillic and Latin need none).

use std::collections::HashMap;
use std::sync::OnceLock;

use krilla::text::{Font, GlyphId, KrillaGlyph};
use skrifa::instance::{LocationRef, Size};
use skrifa::MetadataProvider;

const REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansCondensed.ttf");
const BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansCondensed-Bold.ttf");

/// One face: the krilla font and, per character, its glyph and advance (in em).
pub struct Face {
    pub font: Font,
    glyphs: HashMap<char, (u16, f32)>,
    /// The glyph drawn for a character the font lacks (`?`; never .notdef, which PDF/A
    /// forbids).
    missing: (u16, f32),
}

impl Face {
    fn load(bytes: &'static [u8]) -> Face {
        let font = Font::new(bytes.into(), 0).expect("the embedded font is a valid TrueType font");
        let reader = skrifa::FontRef::new(bytes).expect("the embedded font is a valid TrueType font");
        let upem = reader.metrics(Size::unscaled(), LocationRef::default()).units_per_em as f32;
        let metrics = reader.glyph_metrics(Size::unscaled(), LocationRef::default());
        let mut glyphs = HashMap::new();
        for (code, gid) in reader.charmap().mappings() {
            if let Some(c) = char::from_u32(code) {
                let advance = metrics.advance_width(gid).unwrap_or(0.0) / upem;
                glyphs.insert(c, (gid.to_u32() as u16, advance));
            }
        }
        let missing = glyphs[&'?'];
        Face { font, glyphs, missing }
    }

    fn glyph(&self, c: char) -> (u16, f32) {
        // Tabs, newlines and other controls are drawn as spaces.
        let c = if c.is_control() { ' ' } else { c };
        self.glyphs.get(&c).copied().unwrap_or(self.missing)
    }

    /// The width of `text` at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.glyph(c).1).sum::<f32>() * size
    }

    /// The glyphs of `text`, each with its byte range (what makes the text extractable).
    pub fn glyphs(&self, text: &str) -> Vec<KrillaGlyph> {
        text.char_indices()
            .map(|(i, c)| {
                let (gid, advance) = self.glyph(c);
                KrillaGlyph::new(GlyphId::new(gid as u32), advance, 0.0, 0.0, 0.0, i..i + c.len_utf8(), None)
            })
            .collect()
    }
}

/// The two faces.
pub struct Fonts {
    pub regular: Face,
    pub bold: Face,
}

impl Fonts {
    pub fn face(&self, bold: bool) -> &Face {
        if bold {
            &self.bold
        } else {
            &self.regular
        }
    }
}

/// The fonts, loaded once per process.
pub fn fonts() -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| Fonts { regular: Face::load(REGULAR), bold: Face::load(BOLD) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyrillic_is_mapped_and_measured() {
        let f = fonts();
        for c in "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюя№«»—".chars()
        {
            assert!(f.regular.glyphs.contains_key(&c) && f.bold.glyphs.contains_key(&c), "{c}");
        }
        // A wider letter is measured wider; bold is wider than regular.
        assert!(f.regular.width("Ш", 10.0) > f.regular.width("г", 10.0));
        assert!(f.bold.width("Журнал", 10.0) > f.regular.width("Журнал", 10.0));
        assert_eq!(f.regular.width("ab", 10.0), f.regular.width("a", 10.0) + f.regular.width("b", 10.0));
    }
}
