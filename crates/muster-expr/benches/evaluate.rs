//! Parse once, evaluate many: the seed-003 phone mapping and a
//! SelectUniqueValue user-name mapping.

#![allow(missing_docs, reason = "criterion generates the bench entry points")]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use muster_expr::Expression;
use serde_json::{json, Map, Value};

const PHONE: &str = r#"IIF(IsNullOrEmpty(StripSpaces([ext])), StripSpaces([telephoneNumber]), Join(";ext=", Append("tel:", StripSpaces([telephoneNumber])), StripSpaces([ext])))"#;
const USER_NAME: &str = r#"SelectUniqueValue(Join("@", NormalizeDiacritics(StripSpaces(Join(".", [PreferredFirstName], [PreferredLastName]))), "contoso.com"), Join("@", NormalizeDiacritics(StripSpaces(Join(".", Mid([PreferredFirstName], 1, 1), [PreferredLastName]))), "contoso.com"))"#;
const PHONE_REGEX: &str = r#"Replace([telephoneNumber], , "\\+(?<isdCode>\\d* )(?<phoneNumber>\\d{10})", , "${phoneNumber}", , )"#;

fn user() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "telephoneNumber": "+91 9998887777",
        "ext": "1 23",
        "PreferredFirstName": "Søren",
        "PreferredLastName": "Müller"
    }) else {
        return Map::new();
    };
    map
}

fn bench(c: &mut Criterion) {
    let user = user();
    for (name, text) in [
        ("phone", PHONE),
        ("user_name", USER_NAME),
        ("phone_regex", PHONE_REGEX),
    ] {
        c.bench_function(&format!("parse/{name}"), |b| {
            b.iter(|| Expression::parse(black_box(text)))
        });
        let Ok(expression) = Expression::parse(text) else {
            continue;
        };
        c.bench_function(&format!("evaluate/{name}"), |b| {
            b.iter(|| expression.evaluate(black_box(&user)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
