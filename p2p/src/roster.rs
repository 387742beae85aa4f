//! Who may connect: the members (validator node keys from the genesis) and the observers.
//!
//! The roster is built once from the configuration. It is the allow list handed to
//! `allow_block_list`, the source of dial addresses, and how the swarm task tells a member
//! (may send consensus messages) from an observer (may not).

use std::collections::HashMap;

use libp2p::{Multiaddr, PeerId, identity};

use crate::config::NetworkConfig;
use crate::error::NetworkError;
use crate::event::PeerRole;

/// Derives the libp2p `PeerId` of a node from its 32-byte Ed25519 public key.
pub fn peer_id_from_public_key(public_key: &[u8; 32]) -> Result<PeerId, NetworkError> {
    let key = identity::ed25519::PublicKey::try_from_bytes(public_key).map_err(|e| {
        NetworkError::InvalidPublicKey {
            name: "<key>".into(),
            reason: e.to_string(),
        }
    })?;
    Ok(identity::PublicKey::from(key).to_peer_id())
}

/// Derives the 32-byte Ed25519 public key of a node secret key.
pub fn node_public_key(secret_key: &[u8; 32]) -> Result<[u8; 32], NetworkError> {
    let keypair = keypair_from_secret(secret_key)?;
    let public =
        keypair
            .public()
            .try_into_ed25519()
            .map_err(|e| NetworkError::InvalidSecretKey {
                reason: e.to_string(),
            })?;
    Ok(public.to_bytes())
}

/// Builds the libp2p identity from the node secret key.
pub(crate) fn keypair_from_secret(
    secret_key: &[u8; 32],
) -> Result<identity::Keypair, NetworkError> {
    // The decoder zeroizes its input, so give it a copy.
    let mut copy = *secret_key;
    identity::Keypair::ed25519_from_bytes(&mut copy).map_err(|e| NetworkError::InvalidSecretKey {
        reason: e.to_string(),
    })
}

/// One allowed remote peer.
#[derive(Debug, Clone)]
pub(crate) struct RosterEntry {
    pub name: String,
    pub role: PeerRole,
    pub addr: Option<Multiaddr>,
}

/// The allowed remote peers, keyed by `PeerId` (the local node is not in it).
#[derive(Debug, Clone)]
pub(crate) struct Roster {
    entries: HashMap<PeerId, RosterEntry>,
}

impl Roster {
    /// Builds the roster, rejecting invalid keys and duplicates.
    pub fn from_config(config: &NetworkConfig, local: PeerId) -> Result<Self, NetworkError> {
        let mut entries = HashMap::new();
        let members = config.peers.iter().map(|p| {
            (
                p.name.clone(),
                p.public_key,
                p.addr.clone(),
                PeerRole::Member,
            )
        });
        let observers = config.observers.iter().map(|key| {
            let name = format!("observer-{}", hex_prefix(key));
            (name, *key, None, PeerRole::Observer)
        });
        for (name, key, addr, role) in members.chain(observers) {
            let peer = peer_id_from_public_key(&key).map_err(|e| match e {
                NetworkError::InvalidPublicKey { reason, .. } => NetworkError::InvalidPublicKey {
                    name: name.clone(),
                    reason,
                },
                other => other,
            })?;
            if peer == local {
                continue;
            }
            if entries.contains_key(&peer) {
                return Err(NetworkError::DuplicatePeer { name });
            }
            entries.insert(peer, RosterEntry { name, role, addr });
        }
        Ok(Roster { entries })
    }

    pub fn get(&self, peer: &PeerId) -> Option<&RosterEntry> {
        self.entries.get(peer)
    }

    pub fn is_member(&self, peer: &PeerId) -> bool {
        self.get(peer).is_some_and(|e| e.role == PeerRole::Member)
    }

    /// Every allowed peer.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.entries.keys()
    }

    /// Members we know an address for, to dial and redial.
    pub fn dial_targets(&self) -> impl Iterator<Item = (PeerId, Multiaddr)> + '_ {
        self.entries
            .iter()
            .filter_map(|(peer, e)| match (&e.role, &e.addr) {
                (PeerRole::Member, Some(addr)) => Some((*peer, addr.clone())),
                _ => None,
            })
    }
}

fn hex_prefix(key: &[u8; 32]) -> String {
    key[..4].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PeerSpec;

    fn spec(name: &str, secret: u8, addr: Option<&str>) -> PeerSpec {
        PeerSpec {
            name: name.into(),
            public_key: node_public_key(&[secret; 32]).expect("valid secret"),
            addr: addr.map(|a| a.parse().expect("literal multiaddr")),
        }
    }

    fn config(peers: Vec<PeerSpec>, observers: Vec<[u8; 32]>) -> NetworkConfig {
        let listen = "/ip4/127.0.0.1/tcp/0".parse().expect("literal multiaddr");
        NetworkConfig::new([1; 32], listen, peers, observers)
    }

    fn local() -> PeerId {
        keypair_from_secret(&[1; 32])
            .expect("valid secret")
            .public()
            .to_peer_id()
    }

    #[test]
    fn peer_id_derives_from_the_node_key() {
        let public = node_public_key(&[7; 32]).expect("valid secret");
        let expected = keypair_from_secret(&[7; 32])
            .expect("valid")
            .public()
            .to_peer_id();
        assert_eq!(peer_id_from_public_key(&public).expect("valid"), expected);
    }

    #[test]
    fn skips_self_and_classifies_members_and_observers() {
        let observer = node_public_key(&[9; 32]).expect("valid secret");
        let config = config(
            vec![
                spec("self", 1, None),
                spec("farm", 2, Some("/ip4/127.0.0.1/tcp/1")),
                spec("carrier", 3, None),
            ],
            vec![observer],
        );
        let roster = Roster::from_config(&config, local()).expect("valid roster");
        assert_eq!(roster.peers().count(), 3);
        let targets: Vec<_> = roster.dial_targets().collect();
        assert_eq!(targets.len(), 1, "only members with an address are dialled");
        assert!(roster.is_member(&targets[0].0));
        let observer_id = peer_id_from_public_key(&observer).expect("valid");
        assert_eq!(
            roster.get(&observer_id).map(|e| e.role),
            Some(PeerRole::Observer)
        );
        assert!(!roster.is_member(&observer_id));
    }

    #[test]
    fn rejects_duplicates() {
        let config = config(vec![spec("a", 2, None), spec("b", 2, None)], Vec::new());
        assert!(matches!(
            Roster::from_config(&config, local()),
            Err(NetworkError::DuplicatePeer { name }) if name == "b"
        ));
    }

    #[test]
    fn rejects_a_key_that_is_not_a_curve_point() {
        let bad = (2u8..=255)
            .map(|i| {
                let mut key = [0u8; 32];
                key[0] = i;
                key
            })
            .find(|key| peer_id_from_public_key(key).is_err())
            .expect("about half of all y coordinates have no curve point");
        let bad_spec = PeerSpec {
            name: "bad".into(),
            public_key: bad,
            addr: None,
        };
        assert!(matches!(
            Roster::from_config(&config(vec![bad_spec], Vec::new()), local()),
            Err(NetworkError::InvalidPublicKey { name, .. }) if name == "bad"
        ));
    }
}
