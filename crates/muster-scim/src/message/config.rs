//! The ServiceProviderConfig body (RFC 7643 section 5).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::SERVICE_PROVIDER_CONFIG_URN;

/// The limits a [`ServiceProviderConfig`] advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceProviderLimits {
    /// Most operations in one bulk request.
    pub max_bulk_operations: u64,
    /// Largest request body, in bytes.
    pub max_payload_size: u64,
    /// Most resources one query returns (`filter.maxResults`).
    pub max_results: u64,
    /// Page size when a query gives no `count`.
    pub default_page_size: u64,
    /// Largest page size a query may ask for.
    pub max_page_size: u64,
    /// Whether RFC 9865 cursor paging is offered.
    pub cursor_paging: bool,
    /// Seconds a cursor stays valid, when cursors expire.
    pub cursor_timeout: Option<u64>,
}

/// The `/ServiceProviderConfig` body (RFC 7643 section 5, RFC 9865
/// section 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceProviderConfig {
    /// `[SERVICE_PROVIDER_CONFIG_URN]`.
    pub schemas: Vec<String>,
    /// Human-readable help.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_uri: Option<String>,
    /// PATCH support.
    pub patch: Supported,
    /// Bulk support and limits.
    pub bulk: BulkConfig,
    /// Filter support and limit.
    pub filter: FilterConfig,
    /// Password change support.
    pub change_password: Supported,
    /// Sort support.
    pub sort: Supported,
    /// ETag support.
    pub etag: Supported,
    /// How clients authenticate.
    pub authentication_schemes: Vec<AuthenticationScheme>,
    /// Paging methods and sizes (RFC 9865).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<PaginationConfig>,
    /// `resourceType` and `location`, filled in by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

/// A `{"supported": bool}` capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Supported {
    /// Whether the feature is supported.
    pub supported: bool,
}

/// The `bulk` capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkConfig {
    /// Whether bulk is supported.
    pub supported: bool,
    /// Most operations in one request.
    pub max_operations: u64,
    /// Largest request body, in bytes.
    pub max_payload_size: u64,
}

/// The `filter` capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterConfig {
    /// Whether filtering is supported.
    pub supported: bool,
    /// Most resources one query returns.
    pub max_results: u64,
}

/// One `authenticationSchemes` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationScheme {
    /// `oauthbearertoken`, `httpbasic`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The specification's URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_uri: Option<String>,
    /// Help for this scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_uri: Option<String>,
    /// Whether this is the preferred scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// The RFC 9865 `pagination` capability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaginationConfig {
    /// Whether cursor paging is supported.
    pub cursor: bool,
    /// Whether index paging is supported.
    pub index: bool,
    /// `index` or `cursor`: what a query without paging parameters gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_pagination_method: Option<String>,
    /// Page size when a query gives no `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_page_size: Option<u64>,
    /// Largest page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_page_size: Option<u64>,
    /// Seconds a cursor stays valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_timeout: Option<u64>,
}

impl ServiceProviderConfig {
    /// Muster's capabilities with the given limits: PATCH, bulk, filter,
    /// sort and ETags supported, password change not, index paging (the
    /// default) and cursor paging as `limits` says, bearer-token
    /// authentication.
    pub fn new(limits: &ServiceProviderLimits) -> Self {
        ServiceProviderConfig {
            schemas: vec![SERVICE_PROVIDER_CONFIG_URN.to_owned()],
            documentation_uri: None,
            patch: Supported { supported: true },
            bulk: BulkConfig {
                supported: true,
                max_operations: limits.max_bulk_operations,
                max_payload_size: limits.max_payload_size,
            },
            filter: FilterConfig {
                supported: true,
                max_results: limits.max_results,
            },
            change_password: Supported { supported: false },
            sort: Supported { supported: true },
            etag: Supported { supported: true },
            authentication_schemes: vec![AuthenticationScheme {
                kind: "oauthbearertoken".to_owned(),
                name: "OAuth Bearer Token".to_owned(),
                description: "Authentication with a bearer token in the Authorization header."
                    .to_owned(),
                spec_uri: Some("https://www.rfc-editor.org/rfc/rfc6750".to_owned()),
                documentation_uri: None,
                primary: Some(true),
            }],
            pagination: Some(PaginationConfig {
                cursor: limits.cursor_paging,
                index: true,
                default_pagination_method: Some("index".to_owned()),
                default_page_size: Some(limits.default_page_size),
                max_page_size: Some(limits.max_page_size),
                cursor_timeout: limits.cursor_timeout.filter(|_| limits.cursor_paging),
            }),
            meta: None,
        }
    }
}
