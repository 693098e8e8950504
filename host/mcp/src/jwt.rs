//! Agents' HTTP bearer tokens: JWTs verified against a JWKS file (signature, `exp`,
//! `aud`, and `iss` when configured). Their claims are the binding's `token` input:
//! `sub` is the human the agent acts for, `client_id` (or `azp`) the agent.

use std::path::Path;

use anyhow::Context as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value as Json, json};

/// Verifies agents' tokens.
pub struct Verifier {
    keys: Vec<(Option<String>, DecodingKey, Algorithm)>,
    issuer: Option<String>,
    audience: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl Verifier {
    /// Reads the JWKS at `path`; tokens must carry `audience` (and `issuer` if given).
    pub fn load(path: &Path, issuer: Option<&str>, audience: &str) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the JWKS `{}`", path.display()))?;
        let set: JwkSet = serde_json::from_str(&text).with_context(|| {
            format!(
                "`{}` is not a JWKS (RFC 7517: {{\"keys\": [...]}})",
                path.display()
            )
        })?;
        let mut keys = Vec::new();
        for (n, jwk) in set.keys.iter().enumerate() {
            let key = DecodingKey::from_jwk(jwk)
                .with_context(|| format!("`{}`: key {n} cannot verify tokens", path.display()))?;
            let alg = match jwk.common.key_algorithm {
                Some(a) => a.to_string().parse::<Algorithm>().ok(),
                None => None,
            }
            .or(match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Some(Algorithm::ES256),
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_) => None,
            })
            .with_context(|| {
                format!(
                    "`{}`: key {n} has no usable algorithm (symmetric keys are not accepted)",
                    path.display()
                )
            })?;
            keys.push((jwk.common.key_id.clone(), key, alg));
        }
        if keys.is_empty() {
            anyhow::bail!("the JWKS `{}` has no keys", path.display());
        }
        Ok(Self {
            keys,
            issuer: issuer.map(str::to_string),
            audience: audience.to_string(),
        })
    }

    /// The verified claims of `token`, with `aud` set to the audience it was verified
    /// for (the binding's `$token.aud` names this server), or why not.
    pub fn verify(&self, token: &str) -> Result<Json, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "not a JWT".to_string())?;
        let candidates = self.keys.iter().filter(|(kid, _, alg)| {
            *alg == header.alg && (header.kid.is_none() || kid.is_none() || *kid == header.kid)
        });
        let mut last = "no key of the JWKS matches the token's `kid` and `alg`".to_string();
        for (_, key, alg) in candidates {
            let mut v = Validation::new(*alg);
            v.set_audience(&[&self.audience]);
            v.set_required_spec_claims(&["exp", "aud", "sub"]);
            if let Some(iss) = &self.issuer {
                v.set_issuer(&[iss]);
            }
            match jsonwebtoken::decode::<Json>(token, key, &v) {
                Ok(data) => {
                    let mut claims = data.claims;
                    if !claims.get("sub").is_some_and(Json::is_string) {
                        return Err("the token's `sub` is not a string".into());
                    }
                    if claims.get("client_id").is_none()
                        && let Some(azp) = claims.get("azp").cloned()
                    {
                        claims["client_id"] = azp;
                    }
                    claims["aud"] = json!(self.audience);
                    return Ok(claims);
                }
                Err(e) => last = format!("{:?}", e.kind()),
            }
        }
        Err(last)
    }
}
