//! Property tests for filters: printing any well-formed tree and parsing the
//! text gives the tree back, and parsing any text neither panics nor accepts
//! something it cannot print back.

// Test code: a failed unwrap or panic is a failed test. clippy.toml allows them
// inside #[test] functions only, not in the helpers they share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::{AttrPath, CompareOp, Filter, FilterLimits, FilterValue, ScimType};
use proptest::prelude::*;

fn unlimited() -> FilterLimits {
    FilterLimits {
        max_length: usize::MAX,
        max_depth: usize::MAX,
        max_clauses: usize::MAX,
    }
}

/// Attribute names, including ones that spell keywords.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z][a-zA-Z0-9_-]{0,7}",
        1 => prop::sample::select(vec![
            "and", "or", "not", "pr", "eq", "true", "null", "OR", "Not", "$ref", "value"
        ])
        .prop_map(str::to_owned),
    ]
}

fn urn() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        1 => prop::sample::select(vec![
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:x",
            "URN:a-b:c_d.e",
        ])
        .prop_map(|urn| Some(urn.to_owned())),
    ]
}

fn path(with_sub: bool) -> impl Strategy<Value = AttrPath> {
    let sub = if with_sub {
        prop::option::of(name()).boxed()
    } else {
        Just(None).boxed()
    };
    (urn(), name(), sub).prop_map(|(schema, attribute, sub_attribute)| AttrPath {
        schema,
        attribute,
        sub_attribute,
    })
}

fn value() -> impl Strategy<Value = FilterValue> {
    prop_oneof![
        any::<String>().prop_map(FilterValue::String),
        "[\\x00-\\x1f\"\\\\/ a-z\u{e9}\u{1F600}]{0,8}".prop_map(FilterValue::String),
        any::<bool>().prop_map(FilterValue::Boolean),
        Just(FilterValue::Null),
        any::<i64>().prop_map(|n| FilterValue::Number(n.into())),
        any::<u64>().prop_map(|n| FilterValue::Number(n.into())),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(FilterValue::Number),
    ]
}

fn operator() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

fn clause() -> impl Strategy<Value = Filter> {
    prop_oneof![
        path(true).prop_map(Filter::Present),
        (path(true), operator(), value()).prop_map(|(path, op, value)| Filter::Compare {
            path,
            op,
            value
        }),
    ]
}

/// Well-formed trees over `leaf`: `And`/`Or` with two or more operands.
fn tree(leaf: BoxedStrategy<Filter>) -> impl Strategy<Value = Filter> {
    leaf.prop_recursive(4, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..5).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 2..5).prop_map(Filter::Or),
            inner.prop_map(|operand| Filter::Not(Box::new(operand))),
        ]
    })
}

/// Any tree the parser can produce: value paths hold no value paths.
fn filter() -> impl Strategy<Value = Filter> {
    let value_path =
        (path(false), tree(clause().boxed())).prop_map(|(path, filter)| Filter::ValuePath {
            path,
            filter: Box::new(filter),
        });
    tree(prop_oneof![3 => clause(), 1 => value_path].boxed())
}

/// Text made of filter pieces, to reach deeper into the grammar than
/// arbitrary strings do.
fn filterish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "userName",
            "emails",
            "name.givenName",
            "urn:a:b:c",
            " ",
            "  ",
            "(",
            ")",
            "[",
            "]",
            "\"",
            "\"x\"",
            "\\",
            "\\u",
            "d83d",
            "\\ude00",
            "eq",
            "ne",
            "co",
            "gt",
            "pr",
            "and",
            "or",
            "not",
            "not (",
            "true",
            "null",
            "1",
            "-",
            ".",
            "e",
            "+",
            "0",
            "'",
            "\t",
            "é",
        ]),
        0..24,
    )
    .prop_map(|pieces| pieces.concat())
}

/// If `text` parses, the printed tree parses back to the same tree under the
/// same depth and clause limits (printing never adds nesting).
fn assert_round_trip_from_text(text: &str) {
    let limits = FilterLimits::default();
    let Ok(tree) = Filter::parse_with(text, &limits) else {
        return;
    };
    let printed = tree.to_string();
    let relaxed = FilterLimits {
        max_length: usize::MAX,
        ..limits
    };
    let reparsed = Filter::parse_with(&printed, &relaxed);
    assert_eq!(
        reparsed.as_ref(),
        Ok(&tree),
        "{text:?} printed as {printed:?}"
    );
    assert_eq!(reparsed.map(|tree| tree.to_string()), Ok(printed));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn print_then_parse_gives_the_same_tree(tree in filter()) {
        let printed = tree.to_string();
        let parsed = Filter::parse_with(&printed, &unlimited());
        prop_assert_eq!(parsed, Ok(tree), "printed as {:?}", printed);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        if let Err(error) = Filter::parse(&text) {
            prop_assert_eq!(error.scim_type, Some(ScimType::InvalidFilter));
        }
        assert_round_trip_from_text(&text);
    }

    #[test]
    fn filter_shaped_strings_never_panic_and_round_trip(text in filterish()) {
        if let Err(error) = Filter::parse(&text) {
            prop_assert_eq!(error.scim_type, Some(ScimType::InvalidFilter));
            prop_assert!(error.detail.starts_with("expected "), "{}", error.detail);
        }
        assert_round_trip_from_text(&text);
    }

    #[test]
    fn shouted_trees_with_odd_whitespace_parse_the_same(tree in filter()) {
        let shouted = shout(&tree);
        prop_assert_eq!(Filter::parse_with(&shouted, &unlimited()), Ok(tree), "{:?}", shouted);
    }
}

/// Prints like `Display` but with upper-case keywords and operators, `NOT(`
/// without a space and tabs or runs of spaces between tokens.
fn shout(tree: &Filter) -> String {
    let group = |operands: &[Filter], separator: &str, parenthesise: &dyn Fn(&Filter) -> bool| {
        operands
            .iter()
            .map(|operand| {
                if parenthesise(operand) {
                    format!("( {} )", shout(operand))
                } else {
                    shout(operand)
                }
            })
            .collect::<Vec<_>>()
            .join(separator)
    };
    match tree {
        Filter::And(operands) => group(operands, "  AND\t", &|operand| {
            matches!(operand, Filter::And(_) | Filter::Or(_))
        }),
        Filter::Or(operands) => group(operands, "\tOr  ", &|operand| {
            matches!(operand, Filter::And(_) | Filter::Or(_))
        }),
        Filter::Not(operand) => format!("NOT({})", shout(operand)),
        Filter::Present(path) => format!("{path}\t\tPR"),
        Filter::Compare { path, op, value } => {
            let value = match value {
                FilterValue::Boolean(true) => "TRUE".to_owned(),
                FilterValue::Null => "NuLL".to_owned(),
                other => other.to_string(),
            };
            format!("{path}   {}   {value}", op.as_str().to_uppercase())
        }
        Filter::ValuePath { path, filter } => format!("{path}[ {} ]", shout(filter)),
    }
}
