//! The identity a verified client certificate proves.

use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// Who a client certificate says its holder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    /// The SPIFFE ID (`spiffe://trust-domain/path`), when the certificate has exactly
    /// one `spiffe://` URI SAN, as an X.509 SVID must.
    pub spiffe_id: Option<String>,
    /// The subject distinguished name, e.g. `CN=gateway,O=Acme`.
    pub subject: String,
}

impl CertIdentity {
    /// The id a caller is known by: the SPIFFE ID, else the subject.
    pub fn id(&self) -> &str {
        self.spiffe_id.as_deref().unwrap_or(&self.subject)
    }
}

/// The identity of a (verified) leaf certificate; `None` when it cannot be parsed.
pub fn identity_of(cert: &CertificateDer<'_>) -> Option<CertIdentity> {
    let (_, x509) = X509Certificate::from_der(cert.as_ref()).ok()?;
    let mut spiffe = Vec::new();
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name
                && uri.starts_with("spiffe://")
            {
                spiffe.push((*uri).to_string());
            }
        }
    }
    Some(CertIdentity {
        // Two SPIFFE IDs in one certificate prove neither.
        spiffe_id: (spiffe.len() == 1).then(|| spiffe.remove(0)),
        subject: x509.subject().to_string(),
    })
}
