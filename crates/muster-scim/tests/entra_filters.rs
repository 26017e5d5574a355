//! Entra ID's matching filter (issue 9): `attr[filter].sub op value`, a
//! PATCH-style value path followed by a sub-attribute and a comparison, as
//! Entra ID sends it when the matching attribute is `mail`
//! (`emails[type eq "work"].value eq "a@b.c"`). It is not in RFC 7644's
//! grammar; Muster reads it as exactly `attr[filter and sub op value]`,
//! prints that normalised form, and keeps the limits.

// Test code: a failed unwrap or panic is a failed test. clippy.toml allows them
// inside #[test] functions only, not in the helpers they share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::schema::builtin::USER_SCHEMA;
use muster_scim::{
    AttrPath, CompareOp, Filter, FilterLimits, FilterValue, SchemaRegistry, ScimType,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use CompareOp::*;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const OPERATORS: &str = "eq, ne, co, sw, ew, gt, ge, lt, le, pr";

fn path(text: &str) -> AttrPath {
    AttrPath::parse(text).unwrap()
}

fn cmp(attribute: &str, op: CompareOp, value: FilterValue) -> Filter {
    Filter::Compare {
        path: path(attribute),
        op,
        value,
    }
}

fn pr(attribute: &str) -> Filter {
    Filter::Present(path(attribute))
}

fn s(text: &str) -> FilterValue {
    FilterValue::String(text.to_owned())
}

fn and<const N: usize>(operands: [Filter; N]) -> Filter {
    Filter::And(operands.into())
}

fn or<const N: usize>(operands: [Filter; N]) -> Filter {
    Filter::Or(operands.into())
}

fn not(operand: Filter) -> Filter {
    Filter::Not(Box::new(operand))
}

fn vp(attribute: &str, filter: Filter) -> Filter {
    Filter::ValuePath {
        path: path(attribute),
        filter: Box::new(filter),
    }
}

fn limits(max_depth: usize, max_clauses: usize) -> FilterLimits {
    FilterLimits {
        max_length: usize::MAX,
        max_depth,
        max_clauses,
    }
}

fn unlimited() -> FilterLimits {
    limits(usize::MAX, usize::MAX)
}

/// What parsing a filter should give: the tree and how it prints, or the
/// exact `400 invalidFilter` detail.
enum Expect<'a> {
    Parses(Filter, &'a str),
    Fails(&'a str),
}

/// Parses `input` under `limits` and compares with `expected`. A tree must
/// print as given, and the printed text must parse back to the same tree
/// under the same limits.
fn check_with(input: &str, limits: &FilterLimits, expected: Expect<'_>) {
    let actual = Filter::parse_with(input, limits);
    match expected {
        Expect::Parses(tree, printed) => {
            let parsed = actual.unwrap_or_else(|error| panic!("{input:?}: {error}"));
            assert_eq!(parsed, tree, "{input:?}");
            assert_eq!(parsed.to_string(), printed, "{input:?}");
            let reparsed = Filter::parse_with(printed, limits)
                .unwrap_or_else(|error| panic!("{input:?} printed as {printed:?}: {error}"));
            assert_eq!(reparsed, parsed, "{input:?} printed as {printed:?}");
        }
        Expect::Fails(detail) => {
            let error = match actual {
                Ok(tree) => panic!("{input:?} parsed as {tree:?}, expected an error"),
                Err(error) => error,
            };
            assert_eq!(error.status, 400, "{input:?}");
            assert_eq!(error.scim_type, Some(ScimType::InvalidFilter), "{input:?}");
            assert_eq!(error.detail, detail, "{input:?}");
        }
    }
}

fn check(input: &str, expected: Expect<'_>) {
    check_with(input, &FilterLimits::default(), expected);
}

#[test]
fn the_mail_matching_filter_is_a_value_path_with_and() {
    use Expect::Parses;
    let work_mail = vp(
        "emails",
        and([cmp("type", Eq, s("work")), cmp("value", Eq, s("a@b.c"))]),
    );
    check(
        r#"emails[type eq "work"].value eq "a@b.c""#,
        Parses(
            work_mail.clone(),
            r#"emails[type eq "work" and value eq "a@b.c"]"#,
        ),
    );
    // Exactly the same tree as the RFC form.
    assert_eq!(
        Filter::parse(r#"emails[type eq "work" and value eq "a@b.c"]"#),
        Ok(work_mail.clone())
    );
    // Keywords in any case, the sub-attribute as written.
    check(
        r#"EMAILS[TYPE EQ "work"].Value EQ "a@b.c""#,
        Parses(
            vp(
                "EMAILS",
                and([cmp("TYPE", Eq, s("work")), cmp("Value", Eq, s("a@b.c"))]),
            ),
            r#"EMAILS[TYPE eq "work" and Value eq "a@b.c"]"#,
        ),
    );
    check(
        r#"emails[ type eq "work" ].value   eq   "a@b.c""#,
        Parses(work_mail, r#"emails[type eq "work" and value eq "a@b.c"]"#),
    );
}

#[test]
fn every_operator_and_pr_after_the_sub_attribute() {
    use Expect::Parses;
    let work = || cmp("type", Eq, s("work"));
    check(
        r#"emails[type eq "work"].value pr"#,
        Parses(
            vp("emails", and([work(), pr("value")])),
            r#"emails[type eq "work" and value pr]"#,
        ),
    );
    for op in [Eq, Ne, Co, Sw, Ew, Gt, Ge, Lt, Le] {
        let keyword = op.as_str();
        check(
            &format!(r#"emails[type eq "work"].value {keyword} "x""#),
            Parses(
                vp("emails", and([work(), cmp("value", op, s("x"))])),
                &format!(r#"emails[type eq "work" and value {keyword} "x"]"#),
            ),
        );
    }
    check(
        r#"emails[type eq "work"].primary eq true"#,
        Parses(
            vp(
                "emails",
                and([work(), cmp("primary", Eq, FilterValue::Boolean(true))]),
            ),
            r#"emails[type eq "work" and primary eq true]"#,
        ),
    );
    check(
        r#"emails[type eq "work"].display eq null"#,
        Parses(
            vp(
                "emails",
                and([work(), cmp("display", Eq, FilterValue::Null)]),
            ),
            r#"emails[type eq "work" and display eq null]"#,
        ),
    );
    check(
        &format!(r#"{ENTERPRISE}:manager[value pr].displayName sw "J""#),
        Parses(
            vp(
                &format!("{ENTERPRISE}:manager"),
                and([pr("value"), cmp("displayName", Sw, s("J"))]),
            ),
            &format!(r#"{ENTERPRISE}:manager[value pr and displayName sw "J"]"#),
        ),
    );
}

#[test]
fn the_bracketed_filter_keeps_its_shape() {
    use Expect::Parses;
    // An `and` chain gains the comparison as one more operand, as the text
    // `attr[a and b and sub op v]` would.
    check(
        r#"emails[type eq "work" and primary eq true].value ew "@contoso.com""#,
        Parses(
            vp(
                "emails",
                and([
                    cmp("type", Eq, s("work")),
                    cmp("primary", Eq, FilterValue::Boolean(true)),
                    cmp("value", Ew, s("@contoso.com")),
                ]),
            ),
            r#"emails[type eq "work" and primary eq true and value ew "@contoso.com"]"#,
        ),
    );
    // An `or` is put in parentheses: `attr[(a or b) and sub op v]`.
    check(
        r#"emails[type eq "work" or type eq "home"].value co "@""#,
        Parses(
            vp(
                "emails",
                and([
                    or([cmp("type", Eq, s("work")), cmp("type", Eq, s("home"))]),
                    cmp("value", Co, s("@")),
                ]),
            ),
            r#"emails[(type eq "work" or type eq "home") and value co "@"]"#,
        ),
    );
    check(
        r#"emails[not (type eq "work")].value pr"#,
        Parses(
            vp(
                "emails",
                and([not(cmp("type", Eq, s("work"))), pr("value")]),
            ),
            r#"emails[not (type eq "work") and value pr]"#,
        ),
    );
}

#[test]
fn inside_larger_filters() {
    use Expect::Parses;
    let work_mail = || {
        vp(
            "emails",
            and([cmp("type", Eq, s("work")), cmp("value", Eq, s("a@b.c"))]),
        )
    };
    check(
        r#"userName eq "a" or emails[type eq "work"].value eq "a@b.c" and active eq true"#,
        Parses(
            or([
                cmp("userName", Eq, s("a")),
                and([work_mail(), cmp("active", Eq, FilterValue::Boolean(true))]),
            ]),
            r#"userName eq "a" or emails[type eq "work" and value eq "a@b.c"] and active eq true"#,
        ),
    );
    check(
        r#"not (emails[type eq "work"].value eq "a@b.c")"#,
        Parses(
            not(work_mail()),
            r#"not (emails[type eq "work" and value eq "a@b.c"])"#,
        ),
    );
    check(
        r#"(emails[type eq "work"].value eq "a@b.c")and(title pr)"#,
        Parses(
            and([work_mail(), pr("title")]),
            r#"emails[type eq "work" and value eq "a@b.c"] and title pr"#,
        ),
    );
}

#[test]
fn malformed_suffixes_name_what_and_where() {
    use Expect::Fails;
    let operator = format!("expected a comparison operator ({OPERATORS})");
    let table: Vec<(&str, String)> = vec![
        (
            "emails[type pr] .value pr",
            "expected 'and', 'or' or the end of the filter at position 16, found '.value'".to_owned(),
        ),
        (
            "emails[type pr].value",
            format!("{operator} at position 21, found the end of the filter"),
        ),
        (
            "emails[type pr].value eqq 1",
            format!("{operator} at position 22, found 'eqq'"),
        ),
        (
            "emails[type pr].value eq",
            "expected a value (a JSON string, a number, true, false or null) at position 24, found the end of the filter".to_owned(),
        ),
        (
            "emails[type pr].value[display pr]",
            format!("{operator} at position 21, found '['"),
        ),
        (
            "emails[type pr]. value pr",
            "expected a sub-attribute name after '].' at position 15, found '.' (a letter, then letters, digits, '-', '_' or '$')".to_owned(),
        ),
        (
            "emails[type pr].value.display pr",
            "expected a sub-attribute name after '].' at position 15, found '.value.display' (a letter, then letters, digits, '-', '_' or '$')".to_owned(),
        ),
        (
            "emails[type pr].1st pr",
            "expected a sub-attribute name after '].' at position 15, found '.1st' (a letter, then letters, digits, '-', '_' or '$')".to_owned(),
        ),
        (
            "emails[type pr].urn:x:value pr",
            "expected a sub-attribute name after '].' at position 15, found '.urn:x:value' (a letter, then letters, digits, '-', '_' or '$')".to_owned(),
        ),
        (
            "name.givenName[x pr].value pr",
            format!("{operator} at position 14, found '['; a value path applies to an attribute, not to a sub-attribute such as 'name.givenName'"),
        ),
    ];
    for (input, detail) in &table {
        check(input, Fails(detail));
    }
}

#[test]
fn limits_apply_to_the_text_and_the_normalised_form() {
    use Expect::{Fails, Parses};
    let clause_error = |limit: usize, position: usize| {
        format!(
            "expected at most {limit} comparison and presence clauses, found clause {} at position {position}",
            limit + 1
        )
    };
    // The comparison after `]` is one more clause.
    check_with(
        "emails[type pr].value pr",
        &limits(8, 2),
        Parses(
            vp("emails", and([pr("type"), pr("value")])),
            "emails[type pr and value pr]",
        ),
    );
    check_with(
        "emails[type pr and display pr].value pr",
        &limits(8, 2),
        Fails(&clause_error(2, 30)),
    );
    // The value path is one level.
    check_with(
        "emails[type pr].value pr",
        &limits(1, 8),
        Parses(
            vp("emails", and([pr("type"), pr("value")])),
            "emails[type pr and value pr]",
        ),
    );
    // An `or` inside gains parentheses once normalised: one level more.
    let normalised_depth = |limit: usize, level: usize, position: usize| {
        format!(
            "expected at most {limit} levels of nesting (parentheses, 'not' and value paths), found level {level} once 'attr[... or ...].sub' (the first at position {position}) is read as 'attr[(... or ...) and sub ...]'"
        )
    };
    check_with(
        "emails[type pr or display pr].value pr",
        &limits(1, 8),
        Fails(&normalised_depth(1, 2, 29)),
    );
    check_with(
        "emails[type pr or display pr].value pr",
        &limits(2, 8),
        Parses(
            vp(
                "emails",
                and([or([pr("type"), pr("display")]), pr("value")]),
            ),
            "emails[(type pr or display pr) and value pr]",
        ),
    );
    // Parentheses already in the text are not counted twice.
    check_with(
        "emails[(type pr or display pr)].value pr",
        &limits(2, 8),
        Parses(
            vp(
                "emails",
                and([or([pr("type"), pr("display")]), pr("value")]),
            ),
            "emails[(type pr or display pr) and value pr]",
        ),
    );
    check_with(
        "not (emails[type pr or display pr].value pr)",
        &limits(2, 8),
        Fails(&normalised_depth(2, 3, 34)),
    );
    // The text's own depth is checked as it always was.
    check_with(
        "emails[((type pr or display pr))].value pr",
        &limits(2, 8),
        Fails("expected at most 2 levels of nesting (parentheses, 'not' and value paths), found level 3 at position 8"),
    );
    // Under the default limits: 31 `not`s around the value path reach the
    // 32 levels allowed; its `or` would make the printed form 33 deep.
    let wrap = |inner: &str| {
        let mut text = inner.to_owned();
        for _ in 0..31 {
            text = format!("not ({text})");
        }
        text
    };
    let within = wrap(r#"emails[type eq "work"].value pr"#);
    let tree = Filter::parse(&within).unwrap();
    assert_eq!(Filter::parse(&tree.to_string()), Ok(tree));
    let beyond = wrap(r#"emails[type eq "work" or type eq "home"].value pr"#);
    let error = Filter::parse(&beyond).unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidFilter));
    assert_eq!(error.detail, normalised_depth(32, 33, 195));
}

// ---- evaluation ----

/// A user with a work and a home email, canonical.
fn user() -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "id": "u-1",
        "userName": "bjensen@example.com",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "roles": [{"value": "Admin", "primary": true}, {"value": "Reader", "primary": false}]
    })
}

#[test]
fn evaluation_matches_the_sub_attribute_of_the_selected_value() {
    let registry = SchemaRegistry::builtin();
    let user_type = registry.resource_type("User").unwrap();
    let user = user();
    for (filter, expected) in [
        (
            r#"emails[type eq "work"].value eq "bjensen@example.com""#,
            true,
        ),
        (
            r#"emails[type eq "work"].value eq "BJensen@Example.com""#,
            true,
        ),
        (
            r#"emails[type eq "WORK"].value eq "bjensen@example.com""#,
            true,
        ),
        // The home address is not the work address, although the user has
        // a work email and an email with that address.
        (
            r#"emails[type eq "work"].value eq "babs@jensen.org""#,
            false,
        ),
        (
            r#"emails[type eq "work"] and emails.value eq "babs@jensen.org""#,
            true,
        ),
        (r#"emails[type eq "home"].value eq "babs@jensen.org""#, true),
        (
            r#"emails[type eq "home"].value eq "bjensen@example.com""#,
            false,
        ),
        (r#"emails[type eq "work"].value pr"#, true),
        (r#"emails[type eq "other"].value pr"#, false),
        (r#"emails[type eq "home"].primary eq true"#, false),
        (r#"emails[type eq "work"].primary eq "True""#, true),
        (
            r#"emails[type eq "work" or type eq "home"].value ew "@jensen.org""#,
            true,
        ),
        (
            r#"emails[type eq "work" or type eq "other"].value ew "@jensen.org""#,
            false,
        ),
        (r#"emails[not (type eq "work")].value sw "babs""#, true),
        (r#"emails[type eq "work"].value ne "babs@jensen.org""#, true),
        (
            r#"not (emails[type eq "work"].value eq "babs@jensen.org")"#,
            true,
        ),
        (
            r#"userName eq "x" or emails[type eq "home"].value co "jensen""#,
            true,
        ),
        (r#"roles[primary eq "True"].value eq "Admin""#, true),
        (r#"roles[primary eq "true"].value eq "Reader""#, false),
        (r#"roles[primary eq "False"].value eq "Reader""#, true),
    ] {
        let parsed = Filter::parse(filter).unwrap_or_else(|error| panic!("{filter}: {error}"));
        parsed
            .check(&registry, user_type)
            .unwrap_or_else(|error| panic!("{filter}: {error}"));
        assert_eq!(
            parsed.matches(&user, &registry, user_type),
            expected,
            "{filter}"
        );
    }
}

#[test]
fn checking_names_an_unknown_sub_attribute() {
    let registry = SchemaRegistry::builtin();
    let user_type = registry.resource_type("User").unwrap();
    let parsed = Filter::parse(r#"emails[type eq "work"].valeu eq "a@b.c""#).unwrap();
    let error = parsed.check(&registry, user_type).unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidFilter));
    assert!(error.detail.contains("emails.valeu"), "{}", error.detail);
}

// ---- properties ----

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

fn attribute() -> impl Strategy<Value = AttrPath> {
    let urn = prop_oneof![
        3 => Just(None),
        1 => Just(Some(ENTERPRISE.to_owned())),
        1 => Just(Some("urn:x".to_owned())),
    ];
    (urn, name()).prop_map(|(schema, attribute)| AttrPath {
        schema,
        attribute,
        sub_attribute: None,
    })
}

fn value() -> impl Strategy<Value = FilterValue> {
    prop_oneof![
        any::<String>().prop_map(FilterValue::String),
        "[\"\\\\ a-z\u{e9}\\]\\[.]{0,8}".prop_map(FilterValue::String),
        any::<bool>().prop_map(FilterValue::Boolean),
        Just(FilterValue::Null),
        any::<i64>().prop_map(|n| FilterValue::Number(n.into())),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(FilterValue::Number),
    ]
}

fn operator() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![Eq, Ne, Co, Sw, Ew, Gt, Ge, Lt, Le])
}

/// A comparison or `pr` on `path`.
fn condition(path: AttrPath) -> impl Strategy<Value = Filter> {
    let present = Just(Filter::Present(path.clone()));
    let compare = (operator(), value()).prop_map(move |(op, value)| Filter::Compare {
        path: path.clone(),
        op,
        value,
    });
    prop_oneof![1 => present, 3 => compare]
}

/// A clause of a value filter: paths name sub-attributes (no URN).
fn element_clause() -> impl Strategy<Value = Filter> {
    name().prop_flat_map(|name| condition(AttrPath::new(&name)))
}

/// Value filters as the parser produces them: `And`/`Or` of two or more.
fn element_filter() -> impl Strategy<Value = Filter> {
    element_clause().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::Or),
            inner.prop_map(|operand| Filter::Not(Box::new(operand))),
        ]
    })
}

/// `attr[f].sub op v` as text, with the tree it must parse to.
fn entra_value_path() -> impl Strategy<Value = (String, Filter)> {
    (attribute(), element_filter(), name())
        .prop_flat_map(|(attribute, filter, sub)| {
            (
                Just(attribute),
                Just(filter),
                Just(sub.clone()),
                condition(AttrPath::new(&sub)),
            )
        })
        .prop_map(|(attribute, filter, sub, condition)| {
            let tail = match &condition {
                Filter::Compare { op, value, .. } => format!("{} {value}", op.as_str()),
                _ => "pr".to_owned(),
            };
            let text = format!("{attribute}[{filter}].{sub} {tail}");
            let operands = match filter {
                Filter::And(mut operands) => {
                    operands.push(condition);
                    operands
                }
                other => vec![other, condition],
            };
            let tree = Filter::ValuePath {
                path: attribute,
                filter: Box::new(Filter::And(operands)),
            };
            (text, tree)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// `attr[f].sub op v` parses to `attr[f and sub op v]`, whose printed
    /// text parses back to the same tree.
    #[test]
    fn entra_value_paths_normalise_and_round_trip((text, tree) in entra_value_path()) {
        let parsed = Filter::parse_with(&text, &unlimited());
        prop_assert_eq!(parsed.as_ref(), Ok(&tree), "{:?}", text);
        let printed = tree.to_string();
        prop_assert_eq!(Filter::parse_with(&printed, &unlimited()), Ok(tree), "{:?} printed as {:?}", text, printed);
    }

    /// Within larger filters and under tight limits: whatever parses prints
    /// to text that parses back to the same tree under the same limits.
    #[test]
    fn entra_value_paths_round_trip_under_limits(
        (text, _) in entra_value_path(),
        other in element_clause(),
        shape in 0..4usize,
        max_depth in 1..6usize,
        max_clauses in 1..24usize,
    ) {
        let text = match shape {
            0 => text,
            1 => format!("{other} and {text}"),
            2 => format!("not ({text}) or {other}"),
            _ => format!("({text} or {other}) and {other}"),
        };
        let limits = limits(max_depth, max_clauses);
        match Filter::parse_with(&text, &limits) {
            Ok(tree) => {
                let printed = tree.to_string();
                prop_assert_eq!(Filter::parse_with(&printed, &limits), Ok(tree), "{:?} printed as {:?}", text, printed);
            }
            Err(error) => {
                prop_assert_eq!(error.scim_type, Some(ScimType::InvalidFilter));
                prop_assert!(error.detail.starts_with("expected "), "{}", error.detail);
            }
        }
    }
}
