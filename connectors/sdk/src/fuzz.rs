//! Random inputs for property and fuzz tests of parsers (issue #14, item 2: no parser panics
//! on what a source may send). Deterministic from a seed, so a failing case can be replayed;
//! no dependency beyond the generator the synthetic school already uses.
//!
//! - [`text`]: a random string over the characters that break parsers — ASCII digits and
//!   the separators of dates and numbers, Cyrillic (two bytes in UTF-8), three- and
//!   four-byte characters, combining marks, control characters;
//! - [`mutate_text`]: a valid text with characters inserted, removed or replaced;
//! - [`mutate_json`]: a valid answer with one value changed into another type, a Cyrillic
//!   or empty string, `null`, a huge or negative number, an object removed from an array or
//!   a key dropped: the shapes sources send when they disagree with their clients.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// The generator of these inputs (a test need not depend on `rand` to hold one).
pub type Rng = ChaCha8Rng;

/// The generator of one property test.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A number in `0..n` (0 when `n` is 0).
pub fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        rng.random_range(0..n)
    }
}

/// `true` with probability `p`.
pub fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    rng.random_bool(p.clamp(0.0, 1.0))
}

/// Characters chosen often: what dates, times, numbers and ids are written with.
const COMMON: &[char] =
    &['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '-', ':', '.', 'T', 'Z', '+', ' ', '/', ',', 'e'];
/// Characters that take more than one byte, or are otherwise unusual.
const RARE: &[char] = &[
    'с', 'е', 'н', 'т', 'я', 'б', 'р', 'Ё', 'ж', '№', '«', '»', '—', '…', '€', '₽', '年', '😀', '\u{301}', '\u{200b}',
    '\u{feff}', '\t', '\n', '\0', '\u{7f}', 'ß', 'İ',
];

/// One random character, mostly from [`COMMON`].
pub fn char(rng: &mut ChaCha8Rng) -> char {
    match rng.random_range(0..10u32) {
        0..=5 => COMMON[rng.random_range(0..COMMON.len())],
        6..=8 => RARE[rng.random_range(0..RARE.len())],
        // Anywhere in Unicode (a surrogate number is not a char: take the next one).
        _ => char::from_u32(rng.random_range(0..0x11_0000u32)).unwrap_or('\u{fffd}'),
    }
}

/// A random text of up to `max_chars` characters.
pub fn text(rng: &mut ChaCha8Rng, max_chars: usize) -> String {
    let n = rng.random_range(0..=max_chars);
    (0..n).map(|_| char(rng)).collect()
}

/// `valid` with one to three characters inserted, removed or replaced (whole characters:
/// the mutation itself must not cut one).
pub fn mutate_text(rng: &mut ChaCha8Rng, valid: &str) -> String {
    let mut chars: Vec<char> = valid.chars().collect();
    for _ in 0..rng.random_range(1..=3u32) {
        let at = rng.random_range(0..=chars.len());
        match rng.random_range(0..3u32) {
            0 => chars.insert(at, char(rng)),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ if at < chars.len() => chars[at] = char(rng),
            _ => chars.push(char(rng)),
        }
    }
    chars.into_iter().collect()
}

/// A value of a different shape for the place of `old`.
fn replacement(rng: &mut ChaCha8Rng, old: &Value) -> Value {
    match rng.random_range(0..12u32) {
        0 => Value::Null,
        1 => json!(""),
        2 => json!(text(rng, 12)),
        3 => match old {
            Value::String(s) => json!(mutate_text(rng, s)),
            _ => json!(text(rng, 6)),
        },
        4 => json!(-1),
        5 => json!(u64::MAX),
        6 => json!(1.5e300),
        7 => json!({}),
        8 => json!([]),
        9 => json!(true),
        // The same value as a string, or a string's number as a number.
        10 => match old {
            Value::Number(n) => json!(n.to_string()),
            Value::String(s) => s.parse::<f64>().ok().map_or(json!(0), |v| json!(v)),
            _ => json!("1"),
        },
        _ => json!({"id": rng.random_range(0..1000u32), "name": "Объект"}),
    }
}

/// Every place in a JSON value (the value itself, and every element and member, deeply).
fn count_places(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(count_places).sum(),
        Value::Object(map) => map.values().map(count_places).sum(),
        _ => 0,
    }
}

/// Applies one mutation at the place numbered `target` (pre-order); returns whether done.
fn mutate_at(rng: &mut ChaCha8Rng, v: &mut Value, target: &mut usize) -> bool {
    if *target == 0 {
        // Structural changes of a container are as likely as replacing it.
        match v {
            Value::Array(items) if !items.is_empty() && rng.random_bool(0.5) => {
                let at = rng.random_range(0..items.len());
                if rng.random_bool(0.5) {
                    items.remove(at);
                } else {
                    let copy = items[at].clone();
                    items.insert(at, copy);
                }
            }
            Value::Object(map) if !map.is_empty() && rng.random_bool(0.6) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                let key = &keys[rng.random_range(0..keys.len())];
                if rng.random_bool(0.5) {
                    map.remove(key);
                } else {
                    let old = map[key].clone();
                    map.insert(key.clone(), replacement(rng, &old));
                }
            }
            _ => *v = replacement(rng, v),
        }
        return true;
    }
    *target -= 1;
    match v {
        Value::Array(items) => items.iter_mut().any(|item| mutate_at(rng, item, target)),
        Value::Object(map) => map.values_mut().any(|item| mutate_at(rng, item, target)),
        _ => false,
    }
}

/// `valid` with one to `max_mutations` random changes at random places.
pub fn mutate_json(rng: &mut ChaCha8Rng, valid: &Value, max_mutations: usize) -> Value {
    let mut v = valid.clone();
    for _ in 0..rng.random_range(1..=max_mutations.max(1)) {
        let mut target = rng.random_range(0..count_places(&v));
        mutate_at(rng, &mut v, &mut target);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_change_the_value_and_are_reproducible() {
        let valid = json!({"marks": [{"id": 1, "value": "5", "date": "2025-09-01"}, {"id": 2, "value": "4"}]});
        let a: Vec<Value> = (0..50).map(|i| mutate_json(&mut rng(i), &valid, 3)).collect();
        let b: Vec<Value> = (0..50).map(|i| mutate_json(&mut rng(i), &valid, 3)).collect();
        assert_eq!(a, b, "one seed, one mutation");
        assert!(a.iter().filter(|v| **v != valid).count() > 40, "almost every mutation changes the answer");
        let texts: Vec<String> = (0..200).map(|i| mutate_text(&mut rng(i), "2025-09-01")).collect();
        assert!(texts.iter().any(|t| t.len() != t.chars().count()), "some mutations hold multi-byte characters");
    }
}
