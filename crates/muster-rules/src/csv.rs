//! A small CSV reader for table rows (RFC 4180): quoted fields with `""`
//! escapes and line breaks, CRLF or LF, a UTF-8 byte-order mark ignored.
//!
//! The delimiter is `,`, or `;` when the first line has semicolons and no
//! commas (spreadsheets in many locales save that way). Blank lines are
//! skipped. Work is linear in the text.

/// One record and the line it starts on (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) line: usize,
    pub(crate) fields: Vec<String>,
}

/// A CSV error: the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CsvError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// Parses `text` into at most `max_records` records.
pub(crate) fn parse(text: &str, max_records: usize) -> Result<Vec<Record>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = detect_delimiter(text);
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut record_line = 1;
    let mut quoted_field = false;
    let mut at_field_start = true;
    loop {
        let Some(c) = chars.next() else {
            finish(
                &mut records,
                &mut fields,
                &mut field,
                record_line,
                quoted_field,
            );
            break;
        };
        if at_field_start && c == '"' {
            at_field_start = false;
            quoted_field = true;
            let opened = line;
            loop {
                match chars.next() {
                    None => {
                        return Err(CsvError {
                            line: opened,
                            message: "a quoted field is not closed".to_owned(),
                        })
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(inner) => {
                        if inner == '\n' {
                            line += 1;
                        }
                        field.push(inner);
                    }
                }
            }
            match chars.peek() {
                None | Some('\n' | '\r') => {}
                Some(next) if *next == delimiter => {}
                Some(_) => {
                    return Err(CsvError {
                        line,
                        message: format!(
                            "a closing quote must end the field (followed by '{delimiter}' or a line break)"
                        ),
                    })
                }
            }
            continue;
        }
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                finish(
                    &mut records,
                    &mut fields,
                    &mut field,
                    record_line,
                    quoted_field,
                );
                line += 1;
                record_line = line;
                quoted_field = false;
                at_field_start = true;
            }
            _ if c == delimiter => {
                fields.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '"' => {
                return Err(CsvError {
                    line,
                    message: "a quote inside an unquoted field; quote the whole field and double the quote (\"a \"\"b\"\"\")".to_owned(),
                })
            }
            _ => {
                at_field_start = false;
                field.push(c);
            }
        }
        if let Some(error) = too_many(&records, max_records) {
            return Err(error);
        }
    }
    match too_many(&records, max_records) {
        Some(error) => Err(error),
        None => Ok(records),
    }
}

/// The error for more than `max_records` records, at the first one too many.
fn too_many(records: &[Record], max_records: usize) -> Option<CsvError> {
    (records.len() > max_records).then(|| CsvError {
        line: records.get(max_records).map_or(0, |record| record.line),
        message: format!("at most {max_records} rows are allowed"),
    })
}

/// Ends a record; a blank line (one empty, unquoted field) is no record.
fn finish(
    records: &mut Vec<Record>,
    fields: &mut Vec<String>,
    field: &mut String,
    line: usize,
    quoted: bool,
) {
    let blank = fields.is_empty() && field.is_empty() && !quoted;
    if blank {
        return;
    }
    fields.push(std::mem::take(field));
    records.push(Record {
        line,
        fields: std::mem::take(fields),
    });
}

fn detect_delimiter(text: &str) -> char {
    let first = text.lines().next().unwrap_or("");
    if !first.contains(',') && first.contains(';') {
        ';'
    } else {
        ','
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records as (line, fields), or the error as (line, message start).
    type Expected<'a> = Result<Vec<(usize, Vec<&'a str>)>, (usize, &'a str)>;

    fn check(text: &str, expected: Expected<'_>) {
        let got = parse(text, 10)
            .map(|records| {
                records
                    .into_iter()
                    .map(|record| (record.line, record.fields))
                    .collect::<Vec<_>>()
            })
            .map_err(|error| (error.line, error.message));
        let expected = expected
            .map(|records| {
                records
                    .into_iter()
                    .map(|(line, fields)| {
                        (
                            line,
                            fields.into_iter().map(str::to_owned).collect::<Vec<_>>(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .map_err(|(line, message)| (line, message.to_owned()));
        match (&got, &expected) {
            (Err((line, message)), Err((expected_line, expected_start))) => {
                assert_eq!(line, expected_line, "{text:?}");
                assert!(message.starts_with(expected_start), "{text:?}: {message}");
            }
            _ => assert_eq!(got, expected, "{text:?}"),
        }
    }

    #[test]
    fn records() {
        check(
            "Cost Center,Unit\nCC-4100,Manila Voice\r\nCC-4200,\"Cebu, Chat\"\n",
            Ok(vec![
                (1, vec!["Cost Center", "Unit"]),
                (2, vec!["CC-4100", "Manila Voice"]),
                (3, vec!["CC-4200", "Cebu, Chat"]),
            ]),
        );
        check(
            "\u{feff}a;b\n\n1;\"x\"\"y\"\n",
            Ok(vec![(1, vec!["a", "b"]), (3, vec!["1", "x\"y"])]),
        );
        check(
            "a,b\n\"multi\nline\",2\nc,3",
            Ok(vec![
                (1, vec!["a", "b"]),
                (2, vec!["multi\nline", "2"]),
                (4, vec!["c", "3"]),
            ]),
        );
        check("a,\"\"\n", Ok(vec![(1, vec!["a", ""])]));
        check("\"\"\n", Ok(vec![(1, vec![""])]));
        check("", Ok(vec![]));
        check("a,\"b\nc", Err((1, "a quoted field is not closed")));
        check("a,\"b\"c\n", Err((1, "a closing quote")));
        check("a,b\"c\n", Err((1, "a quote inside")));
        check(&"x\n".repeat(12), Err((11, "at most 10 rows")));
    }
}
