//! Muster's choices where the Entra docs say nothing (see the reference's
//! function table), one row each.

use muster_expr::{Attributes, Expression, Outcome};
use serde_json::{json, Value};

/// Evaluates `text` against `attributes`; `Err` is the error's text.
fn run(text: &str, attributes: Value, taken: &[&str]) -> Result<Outcome, String> {
    let map = attributes.as_object().cloned().unwrap_or_default();
    let source = Attributes::new(map).with_taken(taken.iter().map(|t| (*t).to_owned()));
    Expression::parse(text)
        .and_then(|e| e.evaluate(&source))
        .map_err(|e| e.to_string())
}

fn check(text: &str, attributes: Value, expected: Value) {
    assert_eq!(
        run(text, attributes, &[]),
        Ok(Outcome::Value(expected)),
        "{text}"
    );
}

#[test]
fn documented_choices() {
    for (text, attributes, expected) in [
        (
            r#"Coalesce([a], [b])"#,
            json!({"a": "", "b": "x"}),
            json!(""),
        ),
        (r#"Append([missing], "@x")"#, json!({}), json!("@x")),
        (r#"Append([missing], [other])"#, json!({}), Value::Null),
        (r#"Item([a], 0)"#, json!({"a": ["x"]}), Value::Null),
        (r#"Item([a], 2)"#, json!({"a": ["x"]}), Value::Null),
        (r#"Left("abc", -1)"#, json!({}), json!("abc")),
        (r#"Left([missing], 2)"#, json!({}), json!("")),
        (r#"Word("a b", 0, " ")"#, json!({}), json!("")),
        (r#"Not([missing])"#, json!({}), json!(true)),
        (r#"Count([missing])"#, json!({}), json!(0)),
        (r#"InStr("abc", "z")"#, json!({}), json!(0)),
        (
            r#"InStr("repEated","e",3,vbBinaryCompare)"#,
            json!({}),
            json!(7),
        ),
        (r#"Split("a, b", ",")"#, json!({}), json!(["a", " b"])),
        (
            r#"RemoveDuplicates([a])"#,
            json!({"a": ["y", "x", "y"]}),
            json!(["y", "x"]),
        ),
        (r#"NormalizeDiacritics("đ")"#, json!({}), json!("đ")),
        (
            r#"PCase("PINTO-DE'SILVA", " '-")"#,
            json!({}),
            json!("Pinto-De'Silva"),
        ),
        (
            r#"ToUpper("istanbul", "tr-TR")"#,
            json!({}),
            json!("İSTANBUL"),
        ),
        (
            r#"Switch([missing], "d", "", "empty")"#,
            json!({}),
            json!("empty"),
        ),
        (
            r#"Switch([s], , "k", "v")"#,
            json!({"s": "other"}),
            Value::Null,
        ),
        (
            r#"IIF([missing] = "", "yes", "no")"#,
            json!({}),
            json!("yes"),
        ),
        (
            r#"IIF(IsNullOrEmpty([x]), "empty", "set")"#,
            json!({}),
            json!("empty"),
        ),
        (
            r#"DateDiff("m", CDate("2021-01-31"), CDate("2021-02-01"))"#,
            json!({}),
            json!(1),
        ),
        (
            r#"DateAdd("m", 1, CDate("2021-01-31"))"#,
            json!({}),
            json!("2/28/2021 12:00:00 AM"),
        ),
        (
            r#"NumFromDate(DateFromNum(129699324000000000))"#,
            json!({}),
            json!(129_699_324_000_000_000_i64),
        ),
        (
            r#"[Cost Center Code]"#,
            json!({"Cost Center Code": "CC-4100"}),
            json!("CC-4100"),
        ),
        (r#""constant""#, json!({}), json!("constant")),
        (r#"CBool("True")"#, json!({}), json!(true)),
        (r#"IsString([a])"#, json!({"a": 5}), json!(true)),
        (
            r#"ConvertToBase64("Hello world!")"#,
            json!({}),
            json!("SABlAGwAbABvACAAdwBvAHIAbABkACEA"),
        ),
        (
            r#"Replace([missing], "<u>", , , , , "<u>@contoso.com")"#,
            json!({}),
            json!("@contoso.com"),
        ),
    ] {
        check(text, attributes, expected);
    }
}

#[test]
fn select_unique_value_looks_up_the_target() {
    let text = r#"SelectUniqueValue([a], [b])"#;
    let attributes = json!({"a": "x", "b": "y"});
    assert_eq!(
        run(text, attributes.clone(), &["x"]),
        Ok(Outcome::Value(json!("y")))
    );
    let error = run(text, attributes, &["x", "y"]).unwrap_err();
    assert!(error.contains("entry escrowed at column 1"), "{error}");
}

#[test]
fn errors_at_evaluation_name_the_call() {
    for (text, attributes, wanted) in [
        (
            r#"CDate([d])"#,
            json!({"d": "soon"}),
            "CDate cannot read 'soon' as a date at column 1",
        ),
        (
            r#"Left("a", "x")"#,
            json!({}),
            "Left needs a number as argument 2, not a string at column 1",
        ),
        (
            r#"Append("x", DateAdd("fortnight", 1, Now()))"#,
            json!({}),
            "unknown interval 'fortnight'",
        ),
        (
            r#"RandomString(2, 1, 1, 1, 0)"#,
            json!({}),
            "less than the sum",
        ),
        (
            r#"FormatDateTime("2020", , "yyyyMMdd", "yyyy")"#,
            json!({}),
            "does not match the format",
        ),
        (
            r#"IIF("maybe", 1, 2)"#,
            json!({}),
            "IIF needs a boolean condition",
        ),
    ] {
        let error = run(text, attributes, &[]).unwrap_err();
        assert!(error.contains(wanted), "{text}: {error}");
    }
}

#[test]
fn other_casings_are_accepted_with_a_warning() {
    let parsed = Expression::parse(r#"switch([a], "d", "k", "v")"#).unwrap();
    assert_eq!(parsed.to_string(), r#"Switch([a], "d", "k", "v")"#);
    let warnings: Vec<String> = parsed.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["function 'switch' is documented as 'Switch' at column 1"]
    );
}
