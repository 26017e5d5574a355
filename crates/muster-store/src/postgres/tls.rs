//! TLS to the database server (rustls).
//!
//! The URL's `sslmode` decides, as with libpq: `disable` and `prefer` (the
//! default) connect in clear, `require` connects over TLS only. Unlike
//! libpq's `require`, the server's certificate is always verified, against
//! the system's certificate authorities and those of the PEM file
//! [`CA_VARIABLE`] names (a private CA, or a self-signed server
//! certificate), and its name must match the URL's host: a connection that
//! carries credentials is never encrypted to an unverified peer.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// The environment variable naming a PEM file of certificate authorities
/// the database server's certificate may chain to, besides the system's.
pub const CA_VARIABLE: &str = "MUSTER_DATABASE_CA";

/// The TLS connector for `config`: `None` when it connects in clear.
pub(super) fn connector(
    config: &tokio_postgres::Config,
) -> Result<Option<MakeRustlsConnect>, StoreError> {
    if config.get_ssl_mode() != SslMode::Require {
        return Ok(None);
    }
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for certificate in native.certs {
        // A system certificate rustls cannot use is skipped, as browsers do.
        let _ = roots.add(certificate);
    }
    if let Some(path) = std::env::var_os(CA_VARIABLE) {
        let certificates = CertificateDer::pem_file_iter(&path)
            .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
            .map_err(|error| {
                StoreError::Database(format!(
                    "{CA_VARIABLE}: cannot read certificates from {}: {error}",
                    std::path::Path::new(&path).display()
                ))
            })?;
        for certificate in certificates {
            roots.add(certificate).map_err(|error| {
                StoreError::Database(format!("{CA_VARIABLE}: a certificate is refused: {error}"))
            })?;
        }
    }
    if roots.is_empty() {
        return Err(StoreError::Database(format!(
            "sslmode=require, but no certificate authority is known: install the system's \
             or name a PEM file in {CA_VARIABLE}"
        )));
    }
    #[allow(
        deprecated,
        reason = "ring builds with the C compiler alone (aws-lc needs more); post-quantum key \
                  exchange, the deprecation's reason, is not what PostgreSQL servers offer yet"
    )]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| StoreError::Database(format!("TLS set-up: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(client)))
}
