//! Operator passwords: Argon2id hashes in PHC string form (`$argon2id$v=19$m=...$salt$hash`).
//!
//! Verifying a password is deliberately slow and memory-hungry (the default parameters take
//! about 25 ms and 19 MiB on a laptop core, several times that on a small board), so the node
//! never does it on an executor thread: the broker hands it to the blocking pool (see the OPER
//! command) and hears the answer back as an event. The parameters live in the hash itself, so
//! an operator of a 256 MB board can choose lighter ones when generating it.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Whether `password` matches the PHC `hash`. A malformed hash never matches.
///
/// ```
/// let hash = chatnode::auth::hash_password("secret", b"0123456789abcdef").unwrap();
/// assert!(chatnode::auth::verify_password(&hash, "secret"));
/// assert!(!chatnode::auth::verify_password(&hash, "guess"));
/// assert!(!chatnode::auth::verify_password("not a hash", "secret"));
/// ```
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Hashes `password` with Argon2id's default parameters and the given salt (16 random bytes
/// are right; see [`random_salt`]).
pub fn hash_password(password: &str, salt: &[u8]) -> Result<String, String> {
    let salt = SaltString::encode_b64(salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// 16 bytes from the kernel's random source, for a new hash's salt.
pub fn random_salt() -> std::io::Result<[u8; 16]> {
    use std::io::Read;
    let mut salt = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut salt)?;
    Ok(salt)
}

/// Whether `hash` is a PHC string this module can verify (checked when the config is loaded,
/// so a typo is reported at start rather than as a failed OPER).
pub fn is_valid_hash(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}
