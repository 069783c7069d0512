//! Signing per the Standard Webhooks convention: a secret is `whsec_` and the base64 of 32
//! random bytes (the HMAC key); a delivery carries `webhook-id` (the event's id, the same on
//! every try), `webhook-timestamp` (seconds since the epoch) and `webhook-signature`:
//! `v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, one per valid secret,
//! separated by spaces (during a rotation, the new secret's and the previous one's), so a
//! receiver that knows either verifies it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::domain::error::{Error, Result};

/// What every secret starts with.
pub const SECRET_START: &str = "whsec_";

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("{SECRET_START}{}", STANDARD.encode(key))
}

/// The HMAC key of a secret.
fn key_of(secret: &str) -> Result<Vec<u8>> {
    let encoded = secret.strip_prefix(SECRET_START).unwrap_or(secret);
    STANDARD.decode(encoded).map_err(|_| Error::internal("a webhook secret is not base64"))
}

/// `v1,<signature>` of `body` sent as message `id` at `timestamp` under `secret`.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key_of(secret)?).map_err(Error::internal)?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header's value: a signature per secret, separated by spaces.
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> Result<String> {
    let signatures: Result<Vec<String>> = secrets.iter().map(|s| signature(s, id, timestamp, body)).collect();
    Ok(signatures?.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signatures_match_the_specifications_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = r#"{"test": 2432232314}"#;
        let signed = signature(secret, id, 1_614_265_330, body).unwrap_or_default();
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(new_secret().starts_with(SECRET_START));
        assert_eq!(key_of(&new_secret()).map(|k| k.len()).unwrap_or_default(), 32);
        let both = header(&[secret, secret], id, 1_614_265_330, body).unwrap_or_default();
        assert_eq!(both.split(' ').count(), 2);
    }
}
