//! Parses arbitrary text as an attribute path and as a PATCH path. Neither
//! may panic, and whatever parses must print to text that parses back to the
//! same path.

#![no_main]

use libfuzzer_sys::fuzz_target;
use muster_scim::{AttrPath, PatchPath};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = AttrPath::parse(text) {
        let printed = path.to_string();
        assert_eq!(
            AttrPath::parse(&printed).ok(),
            Some(path),
            "{text:?} printed as {printed:?}"
        );
    }
    if let Ok(path) = PatchPath::parse(text) {
        let printed = path.to_string();
        assert_eq!(
            PatchPath::parse(&printed).ok(),
            Some(path),
            "{text:?} printed as {printed:?}"
        );
    }
});
