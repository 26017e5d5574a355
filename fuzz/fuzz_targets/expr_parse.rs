//! Parses arbitrary text as an Entra attribute-mapping expression. Nothing may
//! panic. Whatever parses must:
//! - print (Display) to text that parses back and prints the same;
//! - list the same attributes after the round trip;
//! - evaluate without panicking against a fixed set of attributes.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use muster_expr::{Attributes, Expression};
use serde_json::{json, Value};

fn source() -> &'static Attributes {
    static SOURCE: OnceLock<Attributes> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let Value::Object(map) = json!({
            "givenName": "Zoë",
            "surname": "Doe",
            "telephoneNumber": "+1 555 123 4567",
            "mail": "",
            "a": "2021-06-30+08:00",
            "b": 42,
            "active": true,
            "proxyAddresses": ["SMTP:a@contoso.com", "smtp:b@contoso.com"],
            "appRoleAssignments": [{"id": "1", "value": "Admin", "displayName": "Admin"}]
        }) else {
            return Attributes::default();
        };
        Attributes::new(map)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let expression = match Expression::parse(text) {
        Ok(expression) => expression,
        Err(error) => {
            assert!(!error.message().is_empty());
            let _ = error.to_string();
            return;
        }
    };
    let printed = expression.to_string();
    match Expression::parse(&printed) {
        Ok(reparsed) => {
            assert_eq!(reparsed.to_string(), printed, "{text:?}");
            assert_eq!(reparsed.attributes(), expression.attributes(), "{text:?}");
        }
        Err(error) => panic!("{text:?} printed as {printed:?}, which fails: {error}"),
    }
    let _ = expression.evaluate(source());
});
