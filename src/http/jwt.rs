//! Tokens from the shop's own identity provider (docs/SECURITY.md, "Tokens from an identity
//! provider"): JSON Web Tokens (RFC 7519) verified by `jsonwebtoken` with a shared HMAC secret
//! (`auth.jwt_secret`, HS256) or the public keys of a JWKS file (`auth.jwt_jwks_file`, RS256
//! or ES256). `sub` is the device the token speaks for; `exp` is required and honoured (a
//! session is closed once it passes, after `auth.jwt_refresh_s` to send a new one); `iss` and
//! `aud` are checked when set.

use std::path::Path;

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// One key a token may be signed with.
struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verifies devices' JWTs.
pub struct JwtVerifier {
    keys: Vec<Key>,
    issuer: Option<String>,
    audience: Option<String>,
}

/// A verified token: the device it speaks for, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub device_id: String,
    pub expires: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
}

impl JwtVerifier {
    /// The verifier of the settings, if any JWT key is configured.
    pub fn new(secret: &str, jwks_file: &Path, issuer: &str, audience: &str) -> Result<Option<Self>, String> {
        let mut keys = Vec::new();
        if !secret.is_empty() {
            let key = DecodingKey::from_secret(secret.as_bytes())
                .map_err(|err| format!("auth.jwt_secret: {err}"))?;
            keys.push(Key { kid: None, algorithm: Algorithm::HS256, key });
        }
        if !jwks_file.as_os_str().is_empty() {
            let shown = jwks_file.display();
            let text = std::fs::read_to_string(jwks_file).map_err(|err| format!("{shown}: {err}"))?;
            let set: JwkSet =
                serde_json::from_str(&text).map_err(|err| format!("{shown}: not a JWKS ({err})"))?;
            for jwk in &set.keys {
                use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm, PublicKeyUse};
                let algorithm = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                        Algorithm::ES256
                    }
                    _ => {
                        return Err(format!("{shown}: only RSA (RS256) and EC P-256 (ES256) keys are taken"));
                    }
                };
                let declared = jwk.common.key_algorithm;
                let fits = matches!(
                    (declared, algorithm),
                    (None, _)
                        | (Some(KeyAlgorithm::RS256), Algorithm::RS256)
                        | (Some(KeyAlgorithm::ES256), Algorithm::ES256)
                );
                let signing =
                    jwk.common.public_key_use.as_ref().is_none_or(|used| *used == PublicKeyUse::Signature);
                if !fits || !signing {
                    return Err(format!(
                        "{shown}: a key is declared for another use than RS256 or ES256 signatures"
                    ));
                }
                let key = DecodingKey::from_jwk(jwk).map_err(|err| format!("{shown}: {err}"))?;
                keys.push(Key { kid: jwk.common.key_id.clone(), algorithm, key });
            }
            if set.keys.is_empty() {
                return Err(format!("{shown}: holds no key"));
            }
        }
        let named = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok((!keys.is_empty()).then(|| Self { keys, issuer: named(issuer), audience: named(audience) }))
    }

    /// Whether `token` has a JWT's form (three dot-separated parts).
    pub fn looks_like(token: &str) -> bool {
        token.split('.').count() == 3
    }

    /// The device `token` speaks for, or why it does not.
    pub fn verify(&self, token: &str) -> Result<Verified, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|err| format!("not a JWT ({err})"))?;
        let candidates = self
            .keys
            .iter()
            .filter(|key| key.algorithm == header.alg)
            .filter(|key| header.kid.is_none() || key.kid.is_none() || key.kid == header.kid);
        let mut last = format!("no key for {:?}", header.alg);
        for key in candidates {
            let mut validation = Validation::new(key.algorithm);
            validation.leeway = 0;
            validation.validate_nbf = true;
            // A configured `iss` or `aud` must be there, not only match when it is.
            let mut required = vec!["exp", "sub"];
            match &self.audience {
                Some(audience) => {
                    validation.set_audience(&[audience]);
                    required.push("aud");
                }
                None => validation.validate_aud = false,
            }
            if let Some(issuer) = &self.issuer {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            validation.set_required_spec_claims(&required);
            match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => {
                    let expires =
                        DateTime::from_timestamp(data.claims.exp, 0).ok_or("exp is out of range")?;
                    if data.claims.sub.is_empty() {
                        return Err("sub is empty".into());
                    }
                    return Ok(Verified { device_id: data.claims.sub, expires });
                }
                Err(err) => last = err.to_string(),
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn token(secret: &str, claims: serde_json::Value) -> String {
        encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes()).expect("key"))
            .expect("encode")
    }

    fn verifier() -> JwtVerifier {
        JwtVerifier::new("shop-secret", Path::new(""), "shop-idp", "").expect("keys").expect("a verifier")
    }

    #[test]
    fn a_token_signed_with_the_secret_speaks_for_its_subject_until_it_expires() {
        let exp = Utc::now().timestamp() + 60;
        let verified = verifier()
            .verify(&token(
                "shop-secret",
                serde_json::json!({"sub": "till-1", "exp": exp, "iss": "shop-idp"}),
            ))
            .expect("valid");
        assert_eq!(verified.device_id, "till-1");
        assert_eq!(verified.expires.timestamp(), exp);
    }

    #[test]
    fn a_wrong_secret_an_expired_token_or_a_missing_claim_is_refused() {
        let later = Utc::now().timestamp() + 60;
        let v = verifier();
        assert!(
            v.verify(&token("other", serde_json::json!({"sub": "a", "exp": later, "iss": "shop-idp"})))
                .is_err()
        );
        let past = Utc::now().timestamp() - 1;
        assert!(
            v.verify(&token("shop-secret", serde_json::json!({"sub": "a", "exp": past, "iss": "shop-idp"})))
                .is_err()
        );
        assert!(v.verify(&token("shop-secret", serde_json::json!({"sub": "a", "iss": "shop-idp"}))).is_err());
        assert!(
            v.verify(&token("shop-secret", serde_json::json!({"exp": later, "iss": "shop-idp"}))).is_err()
        );
        assert!(
            v.verify(&token(
                "shop-secret",
                serde_json::json!({"sub": "a", "exp": later, "iss": "elsewhere"})
            ))
            .is_err()
        );
        // A configured issuer must be there.
        assert!(v.verify(&token("shop-secret", serde_json::json!({"sub": "a", "exp": later}))).is_err());
        let aud =
            JwtVerifier::new("shop-secret", Path::new(""), "", "tills").expect("keys").expect("a verifier");
        assert!(aud.verify(&token("shop-secret", serde_json::json!({"sub": "a", "exp": later}))).is_err());
        assert!(
            aud.verify(&token("shop-secret", serde_json::json!({"sub": "a", "exp": later, "aud": "tills"})))
                .is_ok()
        );
        assert!(JwtVerifier::new("", Path::new(""), "", "").expect("none").is_none());
    }
}
