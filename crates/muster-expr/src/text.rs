//! Text functions that need more than a line: NormalizeDiacritics, PCase,
//! Word, InStr, culture-aware case, RandomString, UTF-16 Base64.

use base64::Engine;
use rand::seq::SliceRandom;
use rand::Rng;

/// Entra's fixed diacritics table (not Unicode decomposition).
const DIACRITICS: &[(&str, &str)] = &[
    ("äàâãåáąăā", "a"),
    ("ÄÀÂÃÅÁĄĂĀ", "A"),
    ("æ", "ae"),
    ("Æ", "AE"),
    ("çčć", "c"),
    ("ÇČĆ", "C"),
    ("ď", "d"),
    ("Ď", "D"),
    ("ëèéêęěėē", "e"),
    ("ËÈÉÊĘĚĖĒ", "E"),
    ("ğ", "g"),
    ("Ğ", "G"),
    ("ïîìíıī", "i"),
    ("ÏÎÌÍİĪ", "I"),
    ("ľł", "l"),
    ("ĽŁ", "L"),
    ("ñńň", "n"),
    ("ÑŃŇ", "N"),
    ("öòőõôóō", "o"),
    ("ÖÒŐÕÔÓŌ", "O"),
    ("ø", "oe"),
    ("Ø", "OE"),
    ("ř", "r"),
    ("Ř", "R"),
    ("ß", "ss"),
    ("šśş", "s"),
    ("ŠŚŞ", "S"),
    ("ť", "t"),
    ("Ť", "T"),
    ("üùûúůűū", "u"),
    ("ÜÙÛÚŮŰŪ", "U"),
    ("ÿý", "y"),
    ("ŸÝ", "Y"),
    ("źžż", "z"),
    ("ŹŽŻ", "Z"),
];

/// Replaces the characters of the table; combining marks (U+0300–U+036F, e.g.
/// macron, underline) after a letter are dropped. Anything else is kept.
pub(crate) fn normalize_diacritics(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut after_letter = false;
    for c in s.chars() {
        if ('\u{300}'..='\u{36f}').contains(&c) && after_letter {
            continue;
        }
        after_letter = c.is_alphabetic();
        match DIACRITICS.iter().find(|(from, _)| from.contains(c)) {
            Some((_, to)) => out.push_str(to),
            None => out.push(c),
        }
    }
    out
}

/// Lower-cases everything, then upper-cases the first letter of each word.
/// Words are separated by `seps` when given, else by anything not alphanumeric.
pub(crate) fn pcase(s: &str, seps: Option<&str>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        let separator = match seps {
            Some(seps) => seps.contains(c),
            None => !c.is_alphanumeric() && c != '\'',
        };
        if separator {
            out.push(c);
            start = true;
        } else if start {
            out.extend(c.to_uppercase());
            start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The `n`-th (1-based) word, any char of `delims` separating; `""` if none.
pub(crate) fn word(s: &str, n: i64, delims: &str) -> String {
    let Some(index) = usize::try_from(n).ok().and_then(|n| n.checked_sub(1)) else {
        return String::new();
    };
    s.split(|c| delims.contains(c))
        .filter(|w| !w.is_empty())
        .nth(index)
        .unwrap_or_default()
        .to_owned()
}

/// 1-based char position of `find` in `s` from `start`; 0 when not found.
pub(crate) fn instr(s: &str, find: &str, start: i64, ignore_case: bool) -> i64 {
    let (s, find) = if ignore_case {
        (s.to_lowercase(), find.to_lowercase())
    } else {
        (s.to_owned(), find.to_owned())
    };
    let skip = usize::try_from(start.max(1) - 1).unwrap_or(0);
    let Some((byte_start, _)) = s.char_indices().nth(skip) else {
        return 0;
    };
    let tail = s.get(byte_start..).unwrap_or_default();
    match tail.find(&find) {
        Some(at) => {
            let chars = tail.get(..at).map_or(0, |head| head.chars().count());
            i64::try_from(skip + chars + 1).unwrap_or(0)
        }
        None => 0,
    }
}

/// Turkish and Azeri dot the i; other cultures use invariant rules.
fn dotted_i(culture: Option<&str>) -> bool {
    culture.is_some_and(|c| {
        let lang = c.split(['-', '_']).next().unwrap_or_default();
        lang.eq_ignore_ascii_case("tr") || lang.eq_ignore_ascii_case("az")
    })
}

/// ToLower with an optional culture name.
pub(crate) fn to_lower(s: &str, culture: Option<&str>) -> String {
    if dotted_i(culture) {
        s.replace('I', "ı").replace('İ', "i").to_lowercase()
    } else {
        s.to_lowercase()
    }
}

/// ToUpper with an optional culture name.
pub(crate) fn to_upper(s: &str, culture: Option<&str>) -> String {
    if dotted_i(culture) {
        s.replace('i', "İ").to_uppercase()
    } else {
        s.to_uppercase()
    }
}

/// Base64 of the UTF-16LE bytes.
pub(crate) fn base64_utf16(s: &str) -> String {
    let bytes: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Upper-case hex of the UTF-8 bytes.
pub(crate) fn utf8_hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02X}")).collect()
}

const DIGITS: &str = "0123456789";
const SPECIALS: &str = "!#$%&()*+,-./:;<=>?@[]^_{|}~";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";

/// RandomString: at least the minimum of each class; the rest from the
/// classes that have a minimum (all classes when every minimum is 0).
pub(crate) fn random_string(len: usize, mins: [usize; 4], avoid: &str) -> Result<String, String> {
    if len > 256 {
        return Err("RandomString length is at most 256".to_owned());
    }
    if mins
        .iter()
        .try_fold(0_usize, |sum, min| sum.checked_add(*min))
        .is_none_or(|sum| sum > len)
    {
        return Err("RandomString length is less than the sum of the minimums".to_owned());
    }
    let classes: Vec<Vec<char>> = [DIGITS, SPECIALS, UPPER, LOWER]
        .iter()
        .map(|class| class.chars().filter(|c| !avoid.contains(*c)).collect())
        .collect();
    let mut rng = rand::rng();
    let mut out: Vec<char> = Vec::with_capacity(len);
    let mut pool: Vec<char> = Vec::new();
    for (class, min) in classes.iter().zip(mins) {
        if min > 0 && class.is_empty() {
            return Err("RandomString avoids every character of a required class".to_owned());
        }
        for _ in 0..min {
            out.extend(class.get(rng.random_range(0..class.len())));
        }
        if min > 0 {
            pool.extend(class);
        }
    }
    if pool.is_empty() {
        pool = classes.concat();
    }
    while out.len() < len && !pool.is_empty() {
        out.extend(pool.get(rng.random_range(0..pool.len())));
    }
    out.shuffle(&mut rng);
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_functions() {
        assert_eq!(
            normalize_diacritics("Søren Müller Ærø Łukasz Straße đ"),
            "Soeren Muller AEroe Lukasz Strasse đ"
        );
        assert_eq!(normalize_diacritics("a\u{304}\u{331}"), "a");
        assert_eq!(pcase("PINTO-DE'SILVA", Some(" '-")), "Pinto-De'Silva");
        assert_eq!(
            pcase("PABLO GONSALVES (SECOND)", None),
            "Pablo Gonsalves (Second)"
        );
        assert_eq!(word("a,,b", 2, ","), "b");
        assert_eq!(word("a b", 0, " "), "");
        assert_eq!(instr("repEated", "e", 3, false), 7);
        assert_eq!(instr("repEated", "e", 3, true), 4);
        assert_eq!(instr("abc", "z", 1, false), 0);
        assert_eq!(to_upper("istanbul", Some("tr-TR")), "İSTANBUL");
        assert_eq!(to_lower("ISTANBUL", Some("tr-TR")), "ıstanbul");
        assert_eq!(
            base64_utf16("Hello world!"),
            "SABlAGwAbABvACAAdwBvAHIAbABkACEA"
        );
        assert_eq!(utf8_hex("Hello world!"), "48656C6C6F20776F726C6421");
        let s = random_string(10, [2, 2, 2, 2], "").unwrap();
        assert_eq!(s.chars().count(), 10);
        assert!(random_string(3, [2, 2, 0, 0], "").is_err());
        assert!(random_string(3, [usize::MAX, 2, 0, 0], "").is_err());
    }
}
