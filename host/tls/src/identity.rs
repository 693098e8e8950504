//! The identity a verified client certificate proves.

use arbiter_core::PeerCertificate;
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// What a verified leaf certificate proves. One the handshake verified but that cannot
/// be read proves nothing any entry maps: it is refused, never taken as no certificate.
pub fn certificate_of(cert: &CertificateDer<'_>) -> PeerCertificate {
    identity_of(cert).unwrap_or_else(|| PeerCertificate {
        spiffe_id: None,
        subject: "(unreadable certificate)".into(),
        not_after: i64::MAX,
    })
}

/// The identity of a (verified) leaf certificate; `None` when it cannot be parsed.
pub fn identity_of(cert: &CertificateDer<'_>) -> Option<PeerCertificate> {
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
    Some(PeerCertificate {
        // Two SPIFFE IDs in one certificate prove neither.
        spiffe_id: (spiffe.len() == 1).then(|| spiffe.remove(0)),
        subject: subject_of(x509.subject()),
        not_after: x509.validity().not_after.timestamp(),
    })
}

/// The subject as `NAME=value` pairs (`+` within one RDN, `, ` between RDNs), values
/// escaped per RFC 4514: `O="Acme, CN=batch"` reads `O=Acme\, CN=batch`, never as two
/// attributes. A value that is not a string is written `#` and its hex bytes.
fn subject_of(name: &x509_parser::x509::X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    name.iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let key = x509_parser::objects::oid2abbrev(attr.attr_type(), registry)
                        .map_or_else(|_| attr.attr_type().to_id_string(), str::to_string);
                    let value = match attr.as_str() {
                        Ok(v) => escape(v),
                        Err(_) => format!("#{}", hex(attr.as_slice())),
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 4514 section 2.4.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i == last && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
        } else {
            if special {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_look_like_several_attributes_are_escaped() {
        assert_eq!(escape("Acme, CN=batch"), "Acme\\, CN=batch");
        assert_eq!(escape("#x"), "\\#x");
        assert_eq!(escape("plain name"), "plain name");
        assert_eq!(escape("a+b"), "a\\+b");
    }
}
