//! The identity a verified client certificate proves: read by `arbiter-tls` from the
//! certificate, mapped to a caller by the service.

/// Who a client certificate says its holder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The SPIFFE ID (`spiffe://trust-domain/path`), when the certificate has exactly
    /// one `spiffe://` URI SAN, as an X.509 SVID must.
    pub spiffe_id: Option<String>,
    /// The subject distinguished name, e.g. `O=Acme, CN=gateway`, with special
    /// characters in values escaped as RFC 4514 says, so that no attribute value can
    /// pass for several attributes.
    pub subject: String,
    /// The end of its validity (unix seconds; `i64::MAX` when unknown): a long-lived
    /// connection stops proving the identity when its certificate has expired.
    pub not_after: i64,
}

impl PeerCertificate {
    /// The id the caller is known by: the SPIFFE ID, else the subject.
    pub fn id(&self) -> &str {
        self.spiffe_id.as_deref().unwrap_or(&self.subject)
    }
}
