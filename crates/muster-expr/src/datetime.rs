//! DateTime support: Entra's US rendering, loose parsing (CDate), .NET custom
//! formats (FormatDateTime), DateAdd/DateDiff intervals and AD FILETIME.

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// 100 ns ticks from 1601-01-01 to 1970-01-01.
const FILETIME_UNIX_EPOCH: i128 = 116_444_736_000_000_000;

/// `M/d/yyyy h:mm:ss tt`, e.g. `3/16/2020 7:00:00 AM`.
pub(crate) fn render_us(d: OffsetDateTime) -> String {
    let hour12 = match d.hour() % 12 {
        0 => 12,
        h => h,
    };
    let tt = if d.hour() < 12 { "AM" } else { "PM" };
    format!(
        "{}/{}/{} {}:{:02}:{:02} {tt}",
        u8::from(d.month()),
        d.day(),
        d.year(),
        hour12,
        d.minute(),
        d.second()
    )
}

/// Parses what CDate accepts: ISO 8601 dates and date-times with an optional
/// offset (`2021-06-30+08:00`, `2012-01-01T23:00:00Z`), or US
/// `M/d/yyyy[ h:mm:ss tt]`. No offset means UTC. The result is in UTC.
pub(crate) fn parse_loose(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    parse_iso(text).or_else(|| {
        [
            "M/d/yyyy h:mm:ss tt",
            "M/d/yyyy H:mm:ss",
            "M/d/yyyy",
            "yyyyMMddHHmmss.FFFFFFFK",
        ]
        .iter()
        .find_map(|format| parse_exact(text, format))
    })
}

fn parse_iso(text: &str) -> Option<OffsetDateTime> {
    let mut c = Cursor::new(text);
    let year = c.digits(4, 4)?;
    c.expect('-')?;
    let month = c.digits(2, 2)?;
    c.expect('-')?;
    let day = c.digits(2, 2)?;
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    if c.eat('T') || c.eat(' ') {
        hour = c.digits(2, 2)?;
        c.expect(':')?;
        minute = c.digits(2, 2)?;
        if c.eat(':') {
            second = c.digits(2, 2)?;
            if c.eat('.') || c.eat(',') {
                nanos = c.fraction(9)?;
            }
        }
    }
    let offset = c.offset()?;
    if !c.done() {
        return None;
    }
    build(year, month, day, hour, minute, second, nanos, offset)
}

#[allow(clippy::too_many_arguments)]
fn build(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    nanos: i64,
    offset: UtcOffset,
) -> Option<OffsetDateTime> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let time = Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        u32::try_from(nanos).ok()?,
    )
    .ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .to_offset(UtcOffset::UTC),
    )
}

/// Reads text piece by piece.
struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            chars: text.chars().peekable(),
        }
    }

    fn done(&mut self) -> bool {
        self.chars.peek().is_none()
    }

    fn eat(&mut self, c: char) -> bool {
        self.chars.next_if_eq(&c).is_some()
    }

    fn expect(&mut self, c: char) -> Option<()> {
        self.eat(c).then_some(())
    }

    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let mut value: i64 = 0;
        let mut count = 0;
        while count < max {
            let Some(d) = self.chars.next_if(char::is_ascii_digit) else {
                break;
            };
            value = value * 10 + i64::from(d.to_digit(10)?);
            count += 1;
        }
        (count >= min).then_some(value)
    }

    /// Fraction digits (1..=max) as nanoseconds; extra digits are dropped.
    fn fraction(&mut self, max: usize) -> Option<i64> {
        let mut nanos: i64 = 0;
        let mut count = 0;
        while let Some(d) = self.chars.next_if(char::is_ascii_digit) {
            if count < 9 {
                nanos = nanos * 10 + i64::from(d.to_digit(10)?);
            }
            count += 1;
        }
        if count == 0 || count > max.max(9) {
            return None;
        }
        Some(nanos * 10_i64.pow(9_u32.saturating_sub(u32::try_from(count).ok()?)))
    }

    /// `Z`, `±HH:MM`, `±HHMM`, `±HH`, or nothing (UTC).
    fn offset(&mut self) -> Option<UtcOffset> {
        if self.eat('Z') || self.eat('z') || self.done() {
            return Some(UtcOffset::UTC);
        }
        let sign = if self.eat('+') {
            1
        } else if self.eat('-') {
            -1
        } else {
            return Some(UtcOffset::UTC);
        };
        let hours = self.digits(1, 2)?;
        self.eat(':');
        let minutes = self.digits(2, 2).unwrap_or(0);
        UtcOffset::from_hms(
            i8::try_from(sign * hours).ok()?,
            i8::try_from(sign * minutes).ok()?,
            0,
        )
        .ok()
    }

    fn word(&mut self, words: &[&str]) -> Option<usize> {
        let rest: String = self.chars.clone().collect();
        let (index, word) = words
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                rest.get(..w.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(w))
            })
            .max_by_key(|(_, w)| w.len())?;
        for _ in 0..word.chars().count() {
            self.chars.next();
        }
        Some(index)
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// One piece of a .NET custom date/time format.
#[derive(Debug, Clone, PartialEq)]
enum Spec {
    /// A letter run: the letter and how many times it repeats.
    Field(char, usize),
    Literal(char),
}

fn specs(format: &str) -> Vec<Spec> {
    let chars: Vec<char> = format.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            'y' | 'M' | 'd' | 'H' | 'h' | 'm' | 's' | 'f' | 'F' | 't' | 'z' | 'K' => {
                let mut n = 1;
                while chars.get(i) == Some(&c) {
                    n += 1;
                    i += 1;
                }
                out.push(Spec::Field(c, n));
            }
            '\'' | '"' => {
                while let Some(&q) = chars.get(i) {
                    i += 1;
                    if q == c {
                        break;
                    }
                    out.push(Spec::Literal(q));
                }
            }
            '\\' => {
                if let Some(&q) = chars.get(i) {
                    i += 1;
                    out.push(Spec::Literal(q));
                }
            }
            '%' => {}
            other => out.push(Spec::Literal(other)),
        }
    }
    out
}

/// .NET `DateTime.ParseExact` with RoundtripKind, AllowLeadingWhite and
/// AllowTrailingWhite; an offset (`zzz`, `K`) converts to UTC, none means UTC.
pub(crate) fn parse_exact(text: &str, format: &str) -> Option<OffsetDateTime> {
    let mut c = Cursor::new(text.trim());
    let (mut year, mut month, mut day) = (1, 1, 1);
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    let mut pm: Option<bool> = None;
    let mut twelve = false;
    let mut offset = UtcOffset::UTC;
    for spec in specs(format) {
        match spec {
            Spec::Literal(l) => c.expect(l)?,
            Spec::Field('y', n) => {
                year = match n {
                    1 | 2 => {
                        let y = c.digits(n, 2)?;
                        if y < 50 {
                            2000 + y
                        } else {
                            1900 + y
                        }
                    }
                    _ => c.digits(n.max(4), n.max(4))?,
                }
            }
            Spec::Field('M', n) if n >= 3 => {
                let names: Vec<&str> = if n == 3 {
                    MONTHS.iter().map(|m| m.get(..3).unwrap_or(m)).collect()
                } else {
                    MONTHS.to_vec()
                };
                month = i64::try_from(c.word(&names)?).ok()? + 1;
            }
            Spec::Field('d', n) if n >= 3 => {
                let names: Vec<&str> = if n == 3 {
                    DAYS.iter().map(|d| d.get(..3).unwrap_or(d)).collect()
                } else {
                    DAYS.to_vec()
                };
                c.word(&names)?;
            }
            Spec::Field(letter @ ('M' | 'd' | 'H' | 'h' | 'm' | 's'), n) => {
                let value = c.digits(n.min(2), 2)?;
                match letter {
                    'M' => month = value,
                    'd' => day = value,
                    'H' => hour = value,
                    'h' => {
                        hour = value;
                        twelve = true;
                    }
                    'm' => minute = value,
                    _ => second = value,
                }
            }
            Spec::Field('f', n) => {
                let before: String = c.chars.clone().take(n).collect();
                if before.len() != n || !before.chars().all(|d| d.is_ascii_digit()) {
                    return None;
                }
                nanos = Cursor::new(&before).fraction(n)?;
                for _ in 0..n {
                    c.chars.next();
                }
            }
            Spec::Field('F', _) => {
                if c.chars.peek().is_some_and(char::is_ascii_digit) {
                    nanos = c.fraction(7)?;
                }
            }
            Spec::Field('t', n) => {
                let words: &[&str] = if n == 1 { &["A", "P"] } else { &["AM", "PM"] };
                pm = Some(c.word(words)? == 1);
            }
            Spec::Field('z' | 'K', _) => offset = c.offset()?,
            Spec::Field(_, _) => return None,
        }
    }
    if !c.done() {
        return None;
    }
    if twelve || pm.is_some() {
        if !(1..=12).contains(&hour) && twelve {
            return None;
        }
        hour = match (pm, hour) {
            (Some(true), h) if h < 12 => h + 12,
            (Some(false), 12) => 0,
            (_, h) => h,
        };
    }
    build(year, month, day, hour, minute, second, nanos, offset)
}

/// .NET `DateTime.ToString(format)` for a UTC value (invariant culture).
pub(crate) fn format(d: OffsetDateTime, format: &str) -> String {
    let mut out = String::new();
    let hour12 = match d.hour() % 12 {
        0 => 12,
        h => h,
    };
    for spec in specs(format) {
        match spec {
            Spec::Literal(l) => out.push(l),
            Spec::Field('y', 1) => out.push_str(&(d.year() % 100).to_string()),
            Spec::Field('y', 2) => out.push_str(&format!("{:02}", d.year() % 100)),
            Spec::Field('y', n) => out.push_str(&format!("{:0n$}", d.year())),
            Spec::Field('M', 3) => out.push_str(month_name(d).get(..3).unwrap_or_default()),
            Spec::Field('M', n) if n > 3 => out.push_str(month_name(d)),
            Spec::Field('d', 3) => out.push_str(day_name(d).get(..3).unwrap_or_default()),
            Spec::Field('d', n) if n > 3 => out.push_str(day_name(d)),
            Spec::Field(letter @ ('M' | 'd' | 'H' | 'h' | 'm' | 's'), n) => {
                let value = match letter {
                    'M' => u8::from(d.month()),
                    'd' => d.day(),
                    'H' => d.hour(),
                    'h' => hour12,
                    'm' => d.minute(),
                    _ => d.second(),
                };
                if n == 1 {
                    out.push_str(&value.to_string());
                } else {
                    out.push_str(&format!("{value:02}"));
                }
            }
            Spec::Field(letter @ ('f' | 'F'), n) => {
                let digits = format!("{:09}", d.nanosecond());
                let mut part = digits.get(..n.min(7)).unwrap_or_default().to_owned();
                if letter == 'F' {
                    part = part.trim_end_matches('0').to_owned();
                }
                out.push_str(&part);
            }
            Spec::Field('t', 1) => out.push(if d.hour() < 12 { 'A' } else { 'P' }),
            Spec::Field('t', _) => out.push_str(if d.hour() < 12 { "AM" } else { "PM" }),
            Spec::Field('z', 1) => out.push_str("+0"),
            Spec::Field('z', 2) => out.push_str("+00"),
            Spec::Field('z', _) => out.push_str("+00:00"),
            Spec::Field('K', _) => out.push('Z'),
            Spec::Field(letter, n) => out.extend(std::iter::repeat_n(letter, n)),
        }
    }
    out
}

fn month_name(d: OffsetDateTime) -> &'static str {
    MONTHS
        .get(usize::from(u8::from(d.month())).saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

fn day_name(d: OffsetDateTime) -> &'static str {
    DAYS.get(usize::from(d.weekday().number_days_from_sunday()))
        .copied()
        .unwrap_or_default()
}

/// Adds `n` months, keeping the day of the month (clamped to the month's length).
fn add_months(d: OffsetDateTime, n: i64) -> Option<OffsetDateTime> {
    let total = (i64::from(d.year()) * 12 + i64::from(u8::from(d.month())) - 1).checked_add(n)?;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let day = d.day().min(month.length(year));
    let date = Date::from_calendar_date(year, month, day).ok()?;
    Some(d.replace_date(date))
}

/// `DateAdd(interval, n, d)`; `None` when the interval is unknown or the result out of range.
pub(crate) fn add(interval: &str, n: i64, d: OffsetDateTime) -> Option<OffsetDateTime> {
    let span = |unit: Duration| unit.checked_mul(i32::try_from(n).ok()?);
    match interval {
        "yyyy" => add_months(d, n.checked_mul(12)?),
        "q" => add_months(d, n.checked_mul(3)?),
        "m" => add_months(d, n),
        "d" | "y" | "w" => d.checked_add(span(Duration::DAY)?),
        "ww" => d.checked_add(span(Duration::WEEK)?),
        "h" => d.checked_add(span(Duration::HOUR)?),
        "n" => d.checked_add(span(Duration::MINUTE)?),
        "s" => d.checked_add(span(Duration::SECOND)?),
        _ => None,
    }
}

/// `DateDiff(interval, d1, d2)` with VB semantics (d2 − d1).
pub(crate) fn diff(interval: &str, d1: OffsetDateTime, d2: OffsetDateTime) -> Option<i64> {
    let seconds = (d2 - d1).whole_seconds();
    let months = |d: OffsetDateTime| i64::from(d.year()) * 12 + i64::from(u8::from(d.month()));
    let quarters =
        |d: OffsetDateTime| i64::from(d.year()) * 4 + (i64::from(u8::from(d.month())) - 1) / 3;
    let week_start = |d: OffsetDateTime| {
        i64::from(d.date().to_julian_day()) - i64::from(d.weekday().number_days_from_sunday())
    };
    Some(match interval {
        "yyyy" => i64::from(d2.year()) - i64::from(d1.year()),
        "q" => quarters(d2) - quarters(d1),
        "m" => months(d2) - months(d1),
        "d" | "y" => seconds / 86_400,
        "w" => seconds / (86_400 * 7),
        "ww" => (week_start(d2) - week_start(d1)) / 7,
        "h" => seconds / 3_600,
        "n" => seconds / 60,
        "s" => seconds,
        _ => return None,
    })
}

/// AD FILETIME (100 ns ticks since 1601-01-01 UTC) to a DateTime.
pub(crate) fn from_filetime(ticks: i64) -> Option<OffsetDateTime> {
    let nanos = (i128::from(ticks) - FILETIME_UNIX_EPOCH).checked_mul(100)?;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// A DateTime as AD FILETIME.
pub(crate) fn to_filetime(d: OffsetDateTime) -> Option<i64> {
    i64::try_from(d.unix_timestamp_nanos() / 100 + FILETIME_UNIX_EPOCH).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> OffsetDateTime {
        parse_loose(text).unwrap()
    }

    #[test]
    fn loose_parsing_and_rendering() {
        for (input, rendered) in [
            ("2021-06-30+08:00", "6/29/2021 4:00:00 PM"),
            ("2020-03-16-07:00", "3/16/2020 7:00:00 AM"),
            ("2012-01-01T23:00:00Z", "1/1/2012 11:00:00 PM"),
            ("12/31/2020 11:59:00 PM", "12/31/2020 11:59:00 PM"),
            ("2021-08-24", "8/24/2021 12:00:00 AM"),
        ] {
            assert_eq!(render_us(utc(input)), rendered, "{input}");
        }
        assert!(parse_loose("yesterday").is_none());
        assert!(parse_loose("2021-13-01").is_none());
    }

    #[test]
    fn dotnet_formats() {
        let d = parse_exact("20150123105347.1Z", "yyyyMMddHHmmss.fZ").unwrap();
        assert_eq!(format(d, "dd/MM/yyyy HH:mm"), "23/01/2015 10:53");
        assert_eq!(
            format(d, "ddd d MMMM yy h:mm tt f"),
            "Fri 23 January 15 10:53 AM 1"
        );
        assert!(parse_exact("2015-01-23", "yyyyMMdd").is_none());
    }

    #[test]
    fn arithmetic() {
        let d = utc("2012-01-31T00:00:00Z");
        assert_eq!(render_us(add("m", 1, d).unwrap()), "2/29/2012 12:00:00 AM");
        assert!(add("fortnight", 1, d).is_none());
        assert!(add("m", i64::MAX, d).is_none());
        assert!(add("yyyy", i64::MIN, d).is_none());
        assert_eq!(diff("ww", utc("2021-08-21"), utc("2021-08-22")), Some(1));
        assert_eq!(
            to_filetime(from_filetime(129_699_324_000_000_000).unwrap()),
            Some(129_699_324_000_000_000)
        );
    }
}
