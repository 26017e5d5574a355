//! Property tests: parsing never panics, the printer round-trips, evaluation
//! never panics, and a few functions' defining properties.

use muster_expr::{Attributes, Expression, Function, Outcome};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Text of a literal or attribute.
fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z ]{1,8}".prop_map(|name| format!("[{name}]")),
        "[a-z\"\\\\ @.+0-9-]{0,8}"
            .prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))),
        any::<i32>().prop_map(|n| n.to_string()),
        Just("[a]".to_owned()),
        Just("[b]".to_owned()),
    ]
}

/// Text of an expression: calls with arities the catalog allows, empty
/// arguments and comparisons.
fn expression() -> impl Strategy<Value = String> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            (
                proptest::sample::select(Function::ALL.to_vec()),
                proptest::collection::vec(proptest::option::weighted(0.9, inner.clone()), 0..5),
            )
                .prop_map(|(function, args)| {
                    let (min, max) = function.arity();
                    let mut args: Vec<String> =
                        args.into_iter().map(Option::unwrap_or_default).collect();
                    args.truncate(max);
                    while args.len() < min {
                        args.push("[a]".to_owned());
                    }
                    format!("{}({})", function.name(), args.join(","))
                }),
            (
                inner.clone(),
                proptest::sample::select(vec!["=", "<>", "<", ">="]),
                inner
            )
                .prop_map(|(l, op, r)| format!("IIF({l} {op} {r}, \"y\", \"n\")")),
        ]
    })
}

fn attributes() -> impl Strategy<Value = Map<String, Value>> {
    let value = prop_oneof![
        ".{0,10}".prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        proptest::collection::vec("[a-z,]{0,5}".prop_map(Value::from), 0..3).prop_map(Value::from),
        Just(json!([{"id": "1", "value": "Admin", "displayName": "Admin"}])),
        Just(json!("2021-06-30+08:00")),
        Just(Value::Null),
    ];
    (value.clone(), value).prop_map(|(a, b)| {
        let mut map = Map::new();
        map.insert("a".to_owned(), a);
        map.insert("b".to_owned(), b);
        map
    })
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC{0,64}") {
        if let Err(error) = Expression::parse(&text) {
            prop_assert!(!error.message().is_empty());
            prop_assert!(error.position().offset <= text.chars().count());
        }
    }

    #[test]
    fn parse_never_panics_on_token_soup(text in "[A-Za-z\\[\\](),\" =<>&\\\\0-9-]{0,48}") {
        let _ = Expression::parse(&text).map(|e| e.to_string());
    }

    #[test]
    fn printer_round_trips_and_evaluation_never_panics(
        text in expression(),
        attributes in attributes(),
    ) {
        let Ok(parsed) = Expression::parse(&text) else { return Ok(()) };
        let printed = parsed.to_string();
        let reparsed = Expression::parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(reparsed.to_string(), printed);
        prop_assert_eq!(reparsed.attributes(), parsed.attributes());
        let source = Attributes::new(attributes);
        let first = parsed.evaluate(&source);
        if !parsed.functions().iter().any(|f| matches!(f, Function::Guid | Function::RandomString | Function::Now)) {
            prop_assert_eq!(first, parsed.evaluate(&source));
        }
    }

    #[test]
    fn strip_spaces_removes_every_space(s in "\\PC{0,32}") {
        let mut map = Map::new();
        map.insert("x".to_owned(), Value::from(s.clone()));
        let outcome = Expression::parse("StripSpaces([x])").unwrap().evaluate(&Attributes::new(map)).unwrap();
        prop_assert_eq!(outcome, Outcome::Value(Value::from(s.replace(' ', ""))));
    }

    #[test]
    fn join_skips_empty_values(parts in proptest::collection::vec("[a-z]{0,3}", 0..5)) {
        let mut map = Map::new();
        map.insert("x".to_owned(), json!(parts));
        let outcome = Expression::parse("Join(\"-\", [x])").unwrap().evaluate(&Attributes::new(map)).unwrap();
        let wanted: Vec<&String> = parts.iter().filter(|p| !p.is_empty()).collect();
        let wanted: Vec<&str> = wanted.iter().map(|s| s.as_str()).collect();
        prop_assert_eq!(outcome, Outcome::Value(Value::from(wanted.join("-"))));
    }
}

#[test]
fn attributes_and_functions_are_listed() {
    let parsed = Expression::parse(
        r#"IIF(IsNullOrEmpty(StripSpaces([ext])), StripSpaces([telephoneNumber]), Join(";ext=", Append("tel:", StripSpaces([telephoneNumber])), StripSpaces([Cost Center Code])))"#,
    )
    .unwrap();
    assert_eq!(
        parsed.attributes(),
        ["ext", "telephoneNumber", "Cost Center Code"]
    );
    assert_eq!(
        parsed.functions(),
        [
            Function::Iif,
            Function::IsNullOrEmpty,
            Function::StripSpaces,
            Function::Join,
            Function::Append
        ]
    );
}

#[test]
fn select_unique_value_defaults_to_the_first_rule() {
    let parsed = Expression::parse(r#"SelectUniqueValue([a], [b])"#).unwrap();
    let mut map = Map::new();
    map.insert("a".to_owned(), json!("x"));
    map.insert("b".to_owned(), json!("y"));
    assert_eq!(parsed.evaluate(&map).unwrap(), Outcome::Value(json!("x")));
}
