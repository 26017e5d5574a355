//! Wire messages of RFC 7644: ListResponse, PatchOp, SearchRequest,
//! BulkRequest/BulkResponse and Error.

use serde::{Deserialize, Serialize};

use crate::error::{ScimError, ScimType};

/// URN of the Error message.
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The RFC 7644 section 3.12 error body; `status` is a string on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// Always `[ERROR_URN]`.
    pub schemas: Vec<String>,
    /// The HTTP status, as a string.
    pub status: String,
    /// The `scimType` keyword, where one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<ScimType>,
    /// What went wrong.
    pub detail: String,
}

impl From<&ScimError> for ErrorResponse {
    fn from(error: &ScimError) -> Self {
        ErrorResponse {
            schemas: vec![ERROR_URN.to_owned()],
            status: error.status.to_string(),
            scim_type: error.scim_type,
            detail: error.detail.clone(),
        }
    }
}
