//! The CLI's key file: JSON with the secret key, the public key and a device's next
//! sequence number, saved atomically.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{CryptoError, Scheme, SecretKey};

/// Which kind of identity a key file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// A consortium member's admin key (signs transactions).
    Member,
    /// An IoT device's key (signs sensor reports).
    Device,
    /// A validator node's key (signs consensus messages).
    Node,
}

/// The CLI's key file, JSON:
/// `{ "kind", "id", "scheme", "secret_key" (hex), "public_key" (hex), "next_sequence" }`.
///
/// `next_sequence` models a device's monotonic counter: [`KeyFile::take_sequence`] hands
/// out the next value and the CLI saves the file after signing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    /// Member, device or node.
    pub kind: KeyKind,
    /// Member id, device id or node id.
    pub id: String,
    /// The key's scheme.
    pub scheme: Scheme,
    /// The 32 secret bytes, hex.
    pub secret_key: String,
    /// The public key, hex.
    pub public_key: String,
    /// The sequence number the next transaction signed with this key will carry.
    pub next_sequence: u64,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("scheme", &self.scheme)
            .field("public_key", &self.public_key)
            .field("next_sequence", &self.next_sequence)
            .finish_non_exhaustive()
    }
}

impl KeyFile {
    /// A key file for `key`, whose first transaction will carry sequence 1.
    pub fn new(kind: KeyKind, id: impl Into<String>, key: &SecretKey) -> Self {
        KeyFile {
            kind,
            id: id.into(),
            scheme: key.scheme(),
            secret_key: hex::encode(key.to_bytes()),
            public_key: hex::encode(key.public_key()),
            next_sequence: 1,
        }
    }

    /// The secret key, checked against the stored public key.
    pub fn secret_key(&self) -> Result<SecretKey, CryptoError> {
        let bytes = hex::decode(&self.secret_key).map_err(|source| CryptoError::KeyFileHex {
            field: "secret_key",
            source,
        })?;
        let key = SecretKey::from_bytes(self.scheme, &bytes)?;
        let stored = hex::decode(&self.public_key).map_err(|source| CryptoError::KeyFileHex {
            field: "public_key",
            source,
        })?;
        let derived = key.public_key();
        if stored != derived {
            return Err(CryptoError::KeyFileMismatch {
                stored: self.public_key.clone(),
                derived: hex::encode(derived),
            });
        }
        Ok(key)
    }

    /// The public key bytes.
    pub fn public_key_bytes(&self) -> Result<Vec<u8>, CryptoError> {
        hex::decode(&self.public_key).map_err(|source| CryptoError::KeyFileHex {
            field: "public_key",
            source,
        })
    }

    /// Returns the sequence number for the next transaction and advances the counter.
    /// Sequences start at 1 (0 is never valid on the chain). The caller must
    /// [`save`](KeyFile::save) the file before it publishes the transaction, or a crash
    /// could hand out the same number twice.
    pub fn take_sequence(&mut self) -> u64 {
        let sequence = self.next_sequence.max(1);
        self.next_sequence = sequence.saturating_add(1);
        sequence
    }

    /// Reads a key file and checks that its keys match.
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let text = fs::read_to_string(path).map_err(|source| CryptoError::KeyFileIo {
            path: path.to_owned(),
            source,
        })?;
        let file: KeyFile =
            serde_json::from_str(&text).map_err(|source| CryptoError::KeyFileFormat {
                path: path.to_owned(),
                source,
            })?;
        file.secret_key()?;
        Ok(file)
    }

    /// Writes the key file atomically: to a temporary file next to it (mode 0600 on
    /// Unix, so the secret is never readable by others, even briefly), synced, then
    /// renamed over `path`. A crash leaves either the old or the new file, never half
    /// of one: losing `next_sequence` would make a device replay sequence numbers.
    pub fn save(&self, path: &Path) -> Result<(), CryptoError> {
        let io_error = |source| CryptoError::KeyFileIo {
            path: path.to_owned(),
            source,
        };
        let json =
            serde_json::to_string_pretty(self).map_err(|source| CryptoError::KeyFileFormat {
                path: path.to_owned(),
                source,
            })?;
        let file_name = path
            .file_name()
            .ok_or_else(|| io_error(std::io::Error::other("path has no file name")))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        // A stale temp file from a crash may have other permissions; start afresh so
        // the mode below applies (it only applies when the file is created).
        if let Err(e) = fs::remove_file(&tmp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(io_error(e));
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options.open(&tmp).and_then(|mut file| {
            file.write_all(json.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()
        });
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(e));
        }
        // Make the rename itself durable (best effort: not every platform can open a
        // directory).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(dir) = fs::File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}
