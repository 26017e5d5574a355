//! What PostgreSQL cannot hold that SQLite can, refused as the client's
//! error (`400`) rather than failing as the database's (`500`).
//!
//! - **The NUL character** (U+0000): a `text` value cannot hold it
//!   (SQLSTATE 22021) and `jsonb` refuses its escape `\u0000` (22P05). A
//!   write, filter or cursor holding one is refused as an invalid value
//!   ([`nul_error`], also the classification of those SQLSTATEs in
//!   `impl From<tokio_postgres::Error> for StoreError`); an id holding one
//!   names no resource (no stored id can hold it), so reads, updates and
//!   deletes of it are answered as for any unknown id.
//! - **Long indexed values**: a B-tree index row holds at most about 2,700
//!   bytes (SQLSTATE 54000, "index row size ... exceeds maximum"). The
//!   values Muster puts in a B-tree (a User's `userName`, a Group's
//!   `displayName`, `externalId`, the value of a searchable attribute, the
//!   claim of a unique attribute's value) are refused, naming the
//!   attribute, when longer than [`MAX_INDEXED_BYTES`]; values of
//!   attributes that are not searchable are not limited. Making an
//!   attribute searchable while a stored value of it is longer is refused
//!   too (`rules::reindex`).

use muster_scim::ScimError;

use crate::sqlite::read::{GROUP, USER};
use crate::sqlite::write::IndexedColumns;
use crate::StoreError;

/// The longest text value, in bytes (UTF-8, in the lower-cased form the
/// index holds), that Muster puts in a B-tree index on PostgreSQL.
///
/// PostgreSQL refuses an index row longer than about 2,700 bytes (a third
/// of a page, less headers); the row also holds the tenant, the resource
/// type or the attribute's number. 2,000 bytes leaves room for those, and
/// is far beyond any real name, identifier or searchable value.
pub const MAX_INDEXED_BYTES: usize = 2000;

/// What a refused NUL character is told as (the value itself is never
/// repeated).
pub(crate) const NUL_DETAIL: &str =
    "the text holds the NUL character (U+0000), which the database cannot store";

/// Whether `text` holds the NUL character.
pub(crate) fn holds_nul(text: &str) -> bool {
    text.contains('\0')
}

/// The refusal of a text holding the NUL character: `400 invalidValue`.
pub(crate) fn nul_error() -> StoreError {
    StoreError::Scim(ScimError::invalid_value(NUL_DETAIL))
}

/// `number` with thousands separated by commas (`2,900`).
pub(crate) fn grouped(number: usize) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The text of a refused long value at `path`.
pub(crate) fn too_long_detail(path: &str, bytes: usize) -> String {
    format!(
        "{path}: a value of {} bytes is longer than the {} bytes Muster indexes on PostgreSQL",
        grouped(bytes),
        grouped(MAX_INDEXED_BYTES)
    )
}

/// Refuses, with `400 invalidValue` naming `path`, a `value` that would
/// go into a B-tree index and is longer than [`MAX_INDEXED_BYTES`].
pub(crate) fn check_indexed(path: &str, value: &str) -> Result<(), StoreError> {
    if value.len() > MAX_INDEXED_BYTES {
        return Err(StoreError::Scim(ScimError::invalid_value(too_long_detail(
            path,
            value.len(),
        ))));
    }
    Ok(())
}

/// Refuses a resource whose indexed columns (`userName` of a User,
/// `displayName` of a Group, `externalId`) are longer than
/// [`MAX_INDEXED_BYTES`].
pub(crate) fn check_columns(
    columns: &IndexedColumns,
    resource_type: &str,
) -> Result<(), StoreError> {
    if resource_type == USER {
        if let Some(lower) = &columns.user_name_lower {
            check_indexed("userName", lower)?;
        }
    }
    if resource_type == GROUP {
        if let Some(lower) = &columns.display_name_lower {
            check_indexed("displayName", lower)?;
        }
    }
    if let Some(external_id) = &columns.external_id {
        check_indexed("externalId", external_id)?;
    }
    Ok(())
}

/// The refusal a database error of SQLSTATE 22021, 22P05 or 54000 stands
/// for: values the database cannot hold, the client's error (`400
/// invalidValue`, never `500`). `None` for any other error.
pub(crate) fn classify(db: &tokio_postgres::error::DbError) -> Option<StoreError> {
    use tokio_postgres::error::SqlState;
    let code = db.code();
    if *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE || *code == SqlState::UNTRANSLATABLE_CHARACTER
    {
        // The database is UTF-8: of the texts Muster sends, only the NUL
        // character (raw, or escaped in JSON) is refused.
        let message = db.message();
        let detail = db.detail().unwrap_or_default();
        let nul = [message, detail]
            .iter()
            .any(|text| text.contains("0x00") || text.contains("\\u0000"));
        return Some(if nul {
            nul_error()
        } else {
            StoreError::Scim(ScimError::invalid_value(
                "the text holds a character the database cannot store",
            ))
        });
    }
    if *code == SqlState::PROGRAM_LIMIT_EXCEEDED {
        let detail = if db.message().contains("index row") {
            format!(
                "a value is too long for the database to index (Muster indexes at most {} bytes \
                 of a userName, displayName, externalId or searchable value on PostgreSQL)",
                grouped(MAX_INDEXED_BYTES)
            )
        } else {
            "the request exceeds a limit of the database".to_owned()
        };
        return Some(StoreError::Scim(ScimError::invalid_value(detail)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(2000), "2,000");
        assert_eq!(grouped(2900), "2,900");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn long_values_name_their_attribute() {
        let long = "x".repeat(2900);
        match check_indexed("title", &long) {
            Err(StoreError::Scim(error)) => {
                assert_eq!(error.status, 400);
                assert_eq!(
                    error.detail,
                    "title: a value of 2,900 bytes is longer than the 2,000 bytes Muster \
                     indexes on PostgreSQL"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(check_indexed("title", &"x".repeat(MAX_INDEXED_BYTES)).is_ok());
    }
}
