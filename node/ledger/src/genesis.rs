//! The genesis file: the consortium's members and the chain id.
//!
//! Written by `tracechain genesis` as TOML, checked here once at start-up, then held
//! by the node as a [`Genesis`]. Its hash (blake3 of the encoded `pb::Genesis`) is the
//! parent hash of block 1, so two nodes with different genesis files never share a chain.

use std::{collections::BTreeMap, path::Path};

use ed25519_dalek::VerifyingKey;
use prost::Message;
use serde::{Deserialize, Serialize};
use tracechain_consensus::{ReplicaId, ValidatorSet};
use tracechain_proto::v1 as pb;

/// Why a genesis file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("cannot read genesis file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML does not parse.
    #[error("genesis file is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// The chain id is empty or longer than 64 bytes.
    #[error("invalid genesis: chain_id must be 1..=64 bytes, got {len}")]
    ChainId {
        /// Its length in bytes.
        len: usize,
    },
    /// No member is listed.
    #[error("invalid genesis: at least one member is needed")]
    NoMembers,
    /// No member is a validator.
    #[error("invalid genesis: at least one member must be a validator")]
    NoValidators,
    /// A member id is empty, too long or not printable ASCII.
    #[error("invalid genesis: member id {id:?} must be 1..=64 printable ASCII characters")]
    MemberId {
        /// The id as written.
        id: String,
    },
    /// Two members share an id.
    #[error("invalid genesis: member id {id} appears twice")]
    DuplicateMember {
        /// The id.
        id: String,
    },
    /// Two members share a node key.
    #[error("invalid genesis: member {member}: node_key is shared with another member")]
    SharedNodeKey {
        /// The second member with the key.
        member: String,
    },
    /// A member's key is not an acceptable Ed25519 public key.
    #[error("invalid genesis: member {member}: {field} {problem}")]
    Key {
        /// The member.
        member: String,
        /// `node_key` or `admin_key`.
        field: &'static str,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// The MKT rule number (in the protobuf form) is not a known rule: a genesis from a
    /// newer version.
    #[error("invalid genesis: MKT rule {rule} is not a known rule")]
    UnknownMktRule {
        /// The number found.
        rule: i32,
    },
    /// A GS1 company prefix that is malformed or overlaps another (one item, two owners).
    #[error("invalid genesis: member {member}: GS1 company prefix {prefix:?} {problem}")]
    CompanyPrefix {
        /// The member.
        member: String,
        /// The prefix.
        prefix: String,
        /// What is wrong.
        problem: String,
    },
    /// The EPCIS event identity rule (in the protobuf form) is not a known rule.
    #[error("invalid genesis: EPCIS event identity {rule} is not a known rule")]
    UnknownEventIdentity {
        /// The number found.
        rule: i32,
    },
    /// The containment rule (in the protobuf form) is not a known rule.
    #[error("invalid genesis: containment rule {rule} is not a known rule")]
    UnknownContainmentRule {
        /// The number found.
        rule: i32,
    },
    /// The lineage rule (in the protobuf form) is not a known rule.
    #[error("invalid genesis: lineage rule {rule} is not a known rule")]
    UnknownLineageRule {
        /// The number found.
        rule: i32,
    },
    /// The attestation rule (in the protobuf form) is not a known rule.
    #[error("invalid genesis: attestation rule {rule} is not a known rule")]
    UnknownAttestationRule {
        /// The number found.
        rule: i32,
    },
    /// The device conflict rule (in the protobuf form) is not a known rule.
    #[error("invalid genesis: device conflict rule {rule} is not a known rule")]
    UnknownDeviceConflictRule {
        /// The number found.
        rule: i32,
    },
    /// A member's role number (in the protobuf form) is not a known role.
    #[error("invalid genesis: member {member}: role {role} is not a known role")]
    UnknownRoleNumber {
        /// The member.
        member: String,
        /// The number found.
        role: i32,
    },
}

/// What is wrong with a genesis key.
#[derive(Debug, thiserror::Error)]
pub enum KeyProblem {
    /// Not 64 hex digits.
    #[error("is not 32 bytes of hex")]
    NotHex,
    /// Not the encoding of a point on the curve.
    #[error("is not an Ed25519 point")]
    NotAPoint,
    /// A point, but one a signature scheme must not accept (small order, torsion).
    #[error("is not acceptable: {0}")]
    Unacceptable(crate::crypto::CryptoError),
}

/// A member's role in the supply chain; customs may clear or hold shipments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A farm or manufacturer: ships goods.
    Producer,
    /// Holds custody in transit.
    Carrier,
    /// Receives goods.
    Retailer,
    /// Clears or holds cross-border shipments.
    Customs,
    /// Reads and checks; no special rights in the ledger.
    Auditor,
}

impl Role {
    /// Every role, in the order the docs list them.
    pub const ALL: [Role; 5] = [
        Role::Producer,
        Role::Carrier,
        Role::Retailer,
        Role::Customs,
        Role::Auditor,
    ];

    /// The role's name as the genesis file and the CLI write it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Carrier => "carrier",
            Role::Retailer => "retailer",
            Role::Customs => "customs",
            Role::Auditor => "auditor",
        }
    }

    /// The protobuf role.
    pub fn to_proto(self) -> pb::MemberRole {
        match self {
            Role::Producer => pb::MemberRole::Producer,
            Role::Carrier => pb::MemberRole::Carrier,
            Role::Retailer => pb::MemberRole::Retailer,
            Role::Customs => pb::MemberRole::Customs,
            Role::Auditor => pb::MemberRole::Auditor,
        }
    }
}

/// A role name that is none of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use producer, carrier, retailer, customs or auditor")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    /// A role by name, in any case ("Carrier", "carrier").
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// A member as written in the genesis file (keys in hex).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberEntry {
    /// Short id, e.g. "farm".
    pub id: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Ed25519 validator node key, hex.
    pub node_key: String,
    /// Ed25519 admin key that signs the member's transactions, hex.
    pub admin_key: String,
    /// host:port of the member's node.
    pub address: String,
    /// Whether the member runs a validator (votes in consensus). A partner without a
    /// node still signs its own transactions and submits them through any node.
    #[serde(default = "default_true")]
    pub validator: bool,
    /// The GS1 company prefixes the member holds: the things whose GS1 keys carry one
    /// are its to commission (a provenance verdict checks it). Digits, 4 to 12; no prefix
    /// of one member starts another's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gs1_company_prefixes: Vec<String>,
}

fn default_true() -> bool {
    true
}

/// The genesis file as written on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenesisFile {
    /// Chain id: every transaction and vote is bound to it.
    pub chain_id: String,
    /// Genesis time, unix ms: block 1's time must be later.
    pub genesis_time_ms: i64,
    /// How far into the future a device's clock may run ahead of block time, ms.
    #[serde(default = "default_skew")]
    pub max_clock_skew_ms: u64,
    /// Members in replica order (member i is replica i).
    pub members: Vec<MemberEntry>,
    /// How MKT weighs a device's first reading. Absent in files written before the
    /// choice existed, which keep the rule they were made with.
    #[serde(default)]
    pub mkt_rule: MktRule,
    /// How an imported EPCIS event is identified. Absent in files written before the
    /// choice existed, which keep recording every event as sent.
    #[serde(default)]
    pub epcis_event_identity: EventIdentity,
    /// Whether the ledger follows what is packed in what. Absent in files written before
    /// the choice existed, which keep recording aggregation events without following them.
    #[serde(default)]
    pub containment: ContainmentRule,
    /// Whether the ledger follows what was made from what. Absent in files written
    /// before the choice existed, which keep recording transformations without following
    /// them.
    #[serde(default)]
    pub lineage: LineageRule,
    /// Whether imported sensor reports enter twins as member-attested readings. Absent
    /// in files written before the choice existed, which keep only recording them.
    #[serde(default)]
    pub attestation: AttestationRule,
    /// Whether proof of a device's conflicting readings flags it. Absent in files
    /// written before the choice existed, which keep refusing such proof.
    #[serde(default)]
    pub device_conflicts: DeviceConflictRule,
}

/// Whether the ledger takes proof that a device key signed conflicting readings (a
/// clone). Part of the genesis because it changes the state: a chain replays with the
/// rule it was made with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceConflictRule {
    /// `ReportDeviceConflict` is refused. The rule of chains made before the choice
    /// existed.
    #[default]
    None,
    /// A proven conflict flags the device and retires the key it was proven with
    /// (`crate::conflicts`). New chains.
    Flagged,
}

impl DeviceConflictRule {
    /// The rule new chains get.
    pub const CURRENT: DeviceConflictRule = DeviceConflictRule::Flagged;

    fn to_proto(self) -> pb::DeviceConflictRule {
        match self {
            DeviceConflictRule::None => pb::DeviceConflictRule::None,
            DeviceConflictRule::Flagged => pb::DeviceConflictRule::Flagged,
        }
    }
}

/// Whether imported EPCIS sensor reports count. Part of the genesis because it changes
/// the state: a chain replays with the rule it was made with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestationRule {
    /// Recorded, not applied. The rule of chains made before the choice existed.
    #[default]
    None,
    /// A logger tied to a shipment (by an AssociationEvent, or an event naming it) puts
    /// its readings into the twin's member-attested record (`crate::attestation`). New
    /// chains.
    Twin,
}

impl AttestationRule {
    /// The rule new chains get.
    pub const CURRENT: AttestationRule = AttestationRule::Twin;

    fn to_proto(self) -> pb::AttestationRule {
        match self {
            AttestationRule::None => pb::AttestationRule::None,
            AttestationRule::Twin => pb::AttestationRule::Twin,
        }
    }
}

/// Whether the ledger follows lineage (EPCIS TransformationEvent inputs and outputs).
/// Part of the genesis because it changes the state: a chain replays with the rule it
/// was made with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineageRule {
    /// Transformations are recorded, not followed. The rule of chains made before the
    /// choice existed.
    #[default]
    None,
    /// Followed: nothing is made from itself, directly or through its inputs'
    /// ancestors (`crate::lineage`). New chains.
    Tracked,
}

impl LineageRule {
    /// The rule new chains get.
    pub const CURRENT: LineageRule = LineageRule::Tracked;

    fn to_proto(self) -> pb::LineageRule {
        match self {
            LineageRule::None => pb::LineageRule::None,
            LineageRule::Tracked => pb::LineageRule::Tracked,
        }
    }
}

/// Whether the ledger follows containment (EPCIS AggregationEvent ADD / DELETE, a
/// shipment's instance-level products). Part of the genesis because it changes the
/// state: a chain replays with the rule it was made with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainmentRule {
    /// Aggregation events are recorded, not followed. The rule of chains made before
    /// the choice existed.
    #[default]
    None,
    /// Followed: a thing is inside one container at a time, a DELETE takes out only
    /// what is inside, nothing is packed inside itself (`crate::containment`). New chains.
    Tracked,
}

impl ContainmentRule {
    /// The rule new chains get.
    pub const CURRENT: ContainmentRule = ContainmentRule::Tracked;

    fn to_proto(self) -> pb::ContainmentRule {
        match self {
            ContainmentRule::None => pb::ContainmentRule::None,
            ContainmentRule::Tracked => pb::ContainmentRule::Tracked,
        }
    }
}

/// How the ledger identifies an imported EPCIS event. Part of the genesis because it
/// changes the state: a chain replays with the rule it was made with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventIdentity {
    /// No identity: every transaction records its event, a retried import twice. The
    /// rule of chains made before the choice existed.
    #[default]
    None,
    /// GS1's EPCIS Event Hash ID (CBV 2.0), computed by every node from the event: an
    /// event is recorded once across all members. New chains.
    Cbv2Hash,
}

impl EventIdentity {
    /// The rule new chains get.
    pub const CURRENT: EventIdentity = EventIdentity::Cbv2Hash;

    fn to_proto(self) -> pb::EpcisEventIdentity {
        match self {
            EventIdentity::None => pb::EpcisEventIdentity::None,
            EventIdentity::Cbv2Hash => pb::EpcisEventIdentity::Cbv2Hash,
        }
    }
}

/// How mean kinetic temperature weighs a device's first reading on a shipment; every
/// later reading weighs the interval since the same device's previous one. Part of the
/// genesis because it changes the state: a chain replays with the rule it was made with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MktRule {
    /// The first reading weighs nothing: n hourly readings give the MKT of the last
    /// n − 1. The rule of chains made before the choice existed.
    #[default]
    FirstReadingUnweighted,
    /// The first reading weighs the interval to the device's next reading, so evenly
    /// spaced readings weigh equally: n hourly readings give the MKT of all n, as USP
    /// <1079.2>'s fixed-interval formula and a logger's own report do. New chains.
    FirstReadingToNext,
}

impl MktRule {
    /// The rule new chains get.
    pub const CURRENT: MktRule = MktRule::FirstReadingToNext;

    fn to_proto(self) -> pb::MktRule {
        match self {
            MktRule::FirstReadingUnweighted => pb::MktRule::FirstReadingUnweighted,
            MktRule::FirstReadingToNext => pb::MktRule::FirstReadingToNext,
        }
    }
}

fn default_skew() -> u64 {
    5 * 60 * 1000
}

impl GenesisFile {
    /// A chain of one member, "farm", the sole validator (no network address): what
    /// single-node tests, benchmarks and examples run. Unchecked, as any `GenesisFile`.
    pub fn single_member(
        chain_id: &str,
        genesis_time_ms: i64,
        node_key: &VerifyingKey,
        admin_key: &[u8],
    ) -> Self {
        GenesisFile {
            chain_id: chain_id.into(),
            genesis_time_ms,
            max_clock_skew_ms: 300_000,
            mkt_rule: MktRule::CURRENT,
            epcis_event_identity: EventIdentity::CURRENT,
            containment: ContainmentRule::CURRENT,
            lineage: LineageRule::CURRENT,
            attestation: AttestationRule::CURRENT,
            device_conflicts: DeviceConflictRule::CURRENT,
            members: vec![MemberEntry {
                id: "farm".into(),
                name: "farm".into(),
                role: Role::Producer,
                node_key: hex::encode(node_key.as_bytes()),
                admin_key: hex::encode(admin_key),
                address: String::new(),
                validator: true,
                gs1_company_prefixes: Vec::new(),
            }],
        }
    }
}

/// A checked member.
#[derive(Debug, Clone)]
pub struct Member {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Validator node key.
    pub node_key: VerifyingKey,
    /// Admin key.
    pub admin_key: VerifyingKey,
    /// host:port.
    pub address: String,
    /// Position among the validators, if the member is one.
    pub replica: Option<ReplicaId>,
    /// GS1 company prefixes the member holds.
    pub gs1_company_prefixes: Vec<String>,
}

/// A checked genesis.
#[derive(Debug, Clone)]
pub struct Genesis {
    /// As written.
    pub file: GenesisFile,
    /// Members in replica order.
    pub members: Vec<Member>,
    by_id: BTreeMap<String, usize>,
    hash: [u8; 32],
}

fn parse_key(
    member: &str,
    field: &'static str,
    hex_key: &str,
) -> Result<VerifyingKey, GenesisError> {
    let problem = |problem| GenesisError::Key {
        member: member.to_string(),
        field,
        problem,
    };
    let bytes: [u8; 32] = hex::decode(hex_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| problem(KeyProblem::NotHex))?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| problem(KeyProblem::NotAPoint))?;
    // Full check: a point, not of small order, no torsion component.
    crate::crypto::validate_public_key(crate::crypto::Scheme::Ed25519, &bytes)
        .map_err(|e| problem(KeyProblem::Unacceptable(e)))?;
    Ok(key)
}

impl Genesis {
    /// Reads and checks a genesis file.
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_file(toml::from_str(&text)?)
    }

    /// Checks a parsed genesis: at least one member, unique ids and keys, valid keys.
    pub fn from_file(file: GenesisFile) -> Result<Self, GenesisError> {
        if file.chain_id.is_empty() || file.chain_id.len() > 64 {
            return Err(GenesisError::ChainId {
                len: file.chain_id.len(),
            });
        }
        if file.members.is_empty() {
            return Err(GenesisError::NoMembers);
        }
        let mut members = Vec::with_capacity(file.members.len());
        let mut by_id = BTreeMap::new();
        let mut node_keys = std::collections::BTreeSet::new();
        let mut validators = 0u32;
        for (i, m) in file.members.iter().enumerate() {
            if m.id.is_empty() || m.id.len() > 64 || !m.id.chars().all(|c| c.is_ascii_graphic()) {
                return Err(GenesisError::MemberId { id: m.id.clone() });
            }
            if by_id.insert(m.id.clone(), i).is_some() {
                return Err(GenesisError::DuplicateMember { id: m.id.clone() });
            }
            let node_key = parse_key(&m.id, "node_key", &m.node_key)?;
            let admin_key = parse_key(&m.id, "admin_key", &m.admin_key)?;
            if !node_keys.insert(node_key.to_bytes()) {
                return Err(GenesisError::SharedNodeKey {
                    member: m.id.clone(),
                });
            }
            let replica = m.validator.then(|| {
                validators += 1;
                ReplicaId(validators - 1)
            });
            for (j, prefix) in m.gs1_company_prefixes.iter().enumerate() {
                if !(4..=12).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(GenesisError::CompanyPrefix {
                        member: m.id.clone(),
                        prefix: prefix.clone(),
                        problem: "is not 4 to 12 digits".into(),
                    });
                }
                let earlier = members.iter().flat_map(|o: &Member| {
                    o.gs1_company_prefixes
                        .iter()
                        .map(move |p| (o.id.as_str(), p))
                });
                let own = m.gs1_company_prefixes[..j]
                    .iter()
                    .map(|p| (m.id.as_str(), p));
                if let Some((holder, _)) = earlier
                    .chain(own)
                    .find(|(_, p)| p.starts_with(prefix.as_str()) || prefix.starts_with(p.as_str()))
                {
                    return Err(GenesisError::CompanyPrefix {
                        member: m.id.clone(),
                        prefix: prefix.clone(),
                        problem: format!("overlaps a prefix of {holder}"),
                    });
                }
            }
            members.push(Member {
                id: m.id.clone(),
                name: m.name.clone(),
                role: m.role,
                node_key,
                admin_key,
                address: m.address.clone(),
                replica,
                gs1_company_prefixes: m.gs1_company_prefixes.clone(),
            });
        }
        if validators == 0 {
            return Err(GenesisError::NoValidators);
        }
        let mut genesis = Self {
            file,
            members,
            by_id,
            hash: [0; 32],
        };
        genesis.hash = *blake3::hash(&genesis.to_proto().encode_to_vec()).as_bytes();
        Ok(genesis)
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.file.chain_id
    }

    /// How this chain's MKT weighs a device's first reading.
    pub fn mkt_rule(&self) -> MktRule {
        self.file.mkt_rule
    }

    /// How this chain identifies an imported EPCIS event.
    pub fn epcis_event_identity(&self) -> EventIdentity {
        self.file.epcis_event_identity
    }

    /// Whether this chain follows containment.
    pub fn containment(&self) -> ContainmentRule {
        self.file.containment
    }

    /// Whether this chain follows lineage.
    pub fn lineage(&self) -> LineageRule {
        self.file.lineage
    }

    /// Whether this chain applies imported sensor reports as attested readings.
    pub fn attestation(&self) -> AttestationRule {
        self.file.attestation
    }

    /// Whether this chain takes proof of device clones.
    pub fn device_conflicts(&self) -> DeviceConflictRule {
        self.file.device_conflicts
    }

    /// blake3 of the encoded `pb::Genesis`: the parent hash of block 1.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The member with `id`.
    pub fn member(&self, id: &str) -> Option<&Member> {
        self.by_id.get(id).map(|&i| &self.members[i])
    }

    /// The member holding the GS1 company prefix that `digits` (a GS1 key's digits after
    /// any indicator or extension digit) starts with.
    pub fn prefix_holder(&self, digits: &str) -> Option<(&Member, &str)> {
        self.members.iter().find_map(|m| {
            m.gs1_company_prefixes
                .iter()
                .find(|p| digits.starts_with(p.as_str()))
                .map(|p| (m, p.as_str()))
        })
    }

    /// Whether any member holds a GS1 company prefix.
    pub fn assigns_prefixes(&self) -> bool {
        self.members
            .iter()
            .any(|m| !m.gs1_company_prefixes.is_empty())
    }

    /// The validating member that is replica `r`.
    pub fn validator(&self, r: ReplicaId) -> Option<&Member> {
        self.members.iter().find(|m| m.replica == Some(r))
    }

    /// The validating members, in replica order.
    pub fn validator_members(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.replica.is_some())
    }

    /// The validator set for consensus and certificate checks.
    pub fn validators(&self) -> ValidatorSet {
        ValidatorSet::new(
            self.chain_id(),
            self.validator_members().map(|m| m.node_key).collect(),
        )
    }

    /// The genesis as protobuf (what its hash covers).
    pub fn to_proto(&self) -> pb::Genesis {
        pb::Genesis {
            chain_id: self.file.chain_id.clone(),
            genesis_time_ms: self.file.genesis_time_ms,
            max_clock_skew_ms: self.file.max_clock_skew_ms,
            mkt_rule: self.file.mkt_rule.to_proto() as i32,
            epcis_event_identity: self.file.epcis_event_identity.to_proto() as i32,
            containment: self.file.containment.to_proto() as i32,
            lineage: self.file.lineage.to_proto() as i32,
            attestation: self.file.attestation.to_proto() as i32,
            device_conflicts: self.file.device_conflicts.to_proto() as i32,
            members: self
                .members
                .iter()
                .map(|m| pb::Member {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    role: m.role.to_proto() as i32,
                    node_key: m.node_key.to_bytes().to_vec(),
                    admin_key: m.admin_key.to_bytes().to_vec(),
                    address: m.address.clone(),
                    validator: m.replica.is_some(),
                    gs1_company_prefixes: m.gs1_company_prefixes.clone(),
                })
                .collect(),
        }
    }

    /// A genesis from its protobuf form (as carried in an audit bundle), checked like a
    /// file. The result's `to_proto()` equals `g` exactly when `g` was well-formed.
    pub fn from_proto(g: &pb::Genesis) -> Result<Self, GenesisError> {
        let members = g
            .members
            .iter()
            .map(|m| {
                let role = match pb::MemberRole::try_from(m.role) {
                    Ok(pb::MemberRole::Producer) => Role::Producer,
                    Ok(pb::MemberRole::Carrier) => Role::Carrier,
                    Ok(pb::MemberRole::Retailer) => Role::Retailer,
                    Ok(pb::MemberRole::Customs) => Role::Customs,
                    Ok(pb::MemberRole::Auditor) => Role::Auditor,
                    _ => {
                        return Err(GenesisError::UnknownRoleNumber {
                            member: m.id.clone(),
                            role: m.role,
                        });
                    }
                };
                Ok(MemberEntry {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    role,
                    node_key: hex::encode(&m.node_key),
                    admin_key: hex::encode(&m.admin_key),
                    address: m.address.clone(),
                    validator: m.validator,
                    gs1_company_prefixes: m.gs1_company_prefixes.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mkt_rule = match pb::MktRule::try_from(g.mkt_rule) {
            Ok(pb::MktRule::FirstReadingUnweighted) => MktRule::FirstReadingUnweighted,
            Ok(pb::MktRule::FirstReadingToNext) => MktRule::FirstReadingToNext,
            Err(_) => return Err(GenesisError::UnknownMktRule { rule: g.mkt_rule }),
        };
        let epcis_event_identity = match pb::EpcisEventIdentity::try_from(g.epcis_event_identity) {
            Ok(pb::EpcisEventIdentity::None) => EventIdentity::None,
            Ok(pb::EpcisEventIdentity::Cbv2Hash) => EventIdentity::Cbv2Hash,
            Err(_) => {
                return Err(GenesisError::UnknownEventIdentity {
                    rule: g.epcis_event_identity,
                });
            }
        };
        let containment = match pb::ContainmentRule::try_from(g.containment) {
            Ok(pb::ContainmentRule::None) => ContainmentRule::None,
            Ok(pb::ContainmentRule::Tracked) => ContainmentRule::Tracked,
            Err(_) => {
                return Err(GenesisError::UnknownContainmentRule {
                    rule: g.containment,
                });
            }
        };
        let lineage = match pb::LineageRule::try_from(g.lineage) {
            Ok(pb::LineageRule::None) => LineageRule::None,
            Ok(pb::LineageRule::Tracked) => LineageRule::Tracked,
            Err(_) => return Err(GenesisError::UnknownLineageRule { rule: g.lineage }),
        };
        let attestation = match pb::AttestationRule::try_from(g.attestation) {
            Ok(pb::AttestationRule::None) => AttestationRule::None,
            Ok(pb::AttestationRule::Twin) => AttestationRule::Twin,
            Err(_) => {
                return Err(GenesisError::UnknownAttestationRule {
                    rule: g.attestation,
                });
            }
        };
        let device_conflicts = match pb::DeviceConflictRule::try_from(g.device_conflicts) {
            Ok(pb::DeviceConflictRule::None) => DeviceConflictRule::None,
            Ok(pb::DeviceConflictRule::Flagged) => DeviceConflictRule::Flagged,
            Err(_) => {
                return Err(GenesisError::UnknownDeviceConflictRule {
                    rule: g.device_conflicts,
                });
            }
        };
        Self::from_file(GenesisFile {
            chain_id: g.chain_id.clone(),
            genesis_time_ms: g.genesis_time_ms,
            max_clock_skew_ms: g.max_clock_skew_ms,
            members,
            mkt_rule,
            epcis_event_identity,
            containment,
            lineage,
            attestation,
            device_conflicts,
        })
    }

    /// Serialises the file as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.file).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_by_name_in_any_case_and_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
            assert_eq!(role.name().to_uppercase().parse::<Role>(), Ok(role));
        }
        let err = "shipper".parse::<Role>().expect_err("not a role");
        assert_eq!(
            err.to_string(),
            "unknown role \"shipper\": use producer, carrier, retailer, customs or auditor"
        );
    }

    fn key_hex(seed: u8) -> String {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        hex::encode(key.verifying_key().as_bytes())
    }

    /// The identity of Edwards25519: a valid encoding of a point of small order.
    fn identity_point() -> String {
        let mut bytes = [0u8; 32];
        bytes[0] = 1;
        hex::encode(bytes)
    }

    fn two_members() -> GenesisFile {
        let mut file = GenesisFile::single_member(
            "chain",
            0,
            &ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key(),
            &[0; 32],
        );
        file.members[0].admin_key = key_hex(2);
        let mut second = file.members[0].clone();
        second.id = "carrier".into();
        second.node_key = key_hex(3);
        second.admin_key = key_hex(4);
        second.validator = false;
        file.members.push(second);
        file
    }

    /// A genesis file written before the MKT rule existed keeps the rule it was made
    /// with, and its hash (what block 1 and every audit bundle are anchored to) does not
    /// change; a new one says which rule it has and hashes differently.
    #[test]
    fn a_genesis_without_an_mkt_rule_keeps_the_old_rule_and_its_hash() {
        let mut file = two_members();
        file.mkt_rule = MktRule::FirstReadingUnweighted;
        file.epcis_event_identity = EventIdentity::None;
        file.containment = ContainmentRule::None;
        file.lineage = LineageRule::None;
        file.attestation = AttestationRule::None;
        file.device_conflicts = DeviceConflictRule::None;
        let toml = toml::to_string(&file).expect("toml");
        let legacy: String = toml
            .lines()
            .filter(|l| {
                !l.starts_with("mkt_rule")
                    && !l.starts_with("epcis_event_identity")
                    && !l.starts_with("containment")
                    && !l.starts_with("lineage")
                    && !l.starts_with("attestation")
                    && !l.starts_with("device_conflicts")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(!legacy.contains("mkt_rule"));
        let old = Genesis::from_file(toml::from_str(&legacy).expect("parses")).expect("valid");
        assert_eq!(old.mkt_rule(), MktRule::FirstReadingUnweighted);
        assert_eq!(old.epcis_event_identity(), EventIdentity::None);
        // The hash is that of the protobuf without the field, as before it existed.
        let proto = old.to_proto();
        assert_eq!(proto.mkt_rule, 0);
        assert_eq!(proto.epcis_event_identity, 0);
        assert_eq!(proto.containment, 0);
        assert_eq!(old.containment(), ContainmentRule::None);
        assert_eq!((proto.lineage, old.lineage()), (0, LineageRule::None));
        assert_eq!(
            (proto.attestation, old.attestation()),
            (0, AttestationRule::None)
        );
        assert_eq!(
            (proto.device_conflicts, old.device_conflicts()),
            (0, DeviceConflictRule::None)
        );
        assert_eq!(old.hash(), *blake3::hash(&proto.encode_to_vec()).as_bytes());
        let new = Genesis::from_file(two_members()).expect("valid");
        assert_eq!(new.mkt_rule(), MktRule::FirstReadingToNext);
        assert_eq!(new.epcis_event_identity(), EventIdentity::Cbv2Hash);
        assert_eq!(new.containment(), ContainmentRule::Tracked);
        assert_eq!(new.lineage(), LineageRule::Tracked);
        assert_eq!(new.attestation(), AttestationRule::Twin);
        assert_eq!(new.device_conflicts(), DeviceConflictRule::Flagged);
        assert_ne!(new.hash(), old.hash());
        assert!(
            new.to_toml()
                .contains("mkt_rule = \"first_reading_to_next\"")
        );
        // Both forms survive the protobuf round trip (audit bundles carry it).
        for g in [&old, &new] {
            assert_eq!(
                Genesis::from_proto(&g.to_proto()).expect("valid").hash(),
                g.hash()
            );
        }
    }

    /// A protobuf genesis (as an audit bundle carries) with a rule number this build
    /// does not know is refused by name, never read as another rule.
    #[test]
    fn an_unknown_rule_number_is_refused() {
        let good = Genesis::from_file(two_members()).expect("valid").to_proto();
        let mut g = good.clone();
        g.device_conflicts = 7;
        assert!(matches!(
            Genesis::from_proto(&g),
            Err(GenesisError::UnknownDeviceConflictRule { rule: 7 })
        ));
        let mut g = good;
        g.attestation = 9;
        assert!(matches!(
            Genesis::from_proto(&g),
            Err(GenesisError::UnknownAttestationRule { rule: 9 })
        ));
    }

    /// Each broken rule is reported as its own error, with the facts a caller needs.
    #[test]
    fn each_broken_rule_has_its_own_error() {
        assert!(Genesis::from_file(two_members()).is_ok());
        type Tweak = fn(&mut GenesisFile);
        type Expected = fn(&GenesisError) -> bool;
        let cases: Vec<(&str, Tweak, Expected)> = vec![
            (
                "empty chain id",
                |f| f.chain_id.clear(),
                |e| matches!(e, GenesisError::ChainId { len: 0 }),
            ),
            (
                "no members",
                |f| f.members.clear(),
                |e| matches!(e, GenesisError::NoMembers),
            ),
            (
                "no validator",
                |f| f.members[0].validator = false,
                |e| matches!(e, GenesisError::NoValidators),
            ),
            (
                "id with a space",
                |f| f.members[1].id = "a b".into(),
                |e| matches!(e, GenesisError::MemberId { id } if id == "a b"),
            ),
            (
                "id twice",
                |f| f.members[1].id = "farm".into(),
                |e| matches!(e, GenesisError::DuplicateMember { id } if id == "farm"),
            ),
            (
                "shared node key",
                |f| f.members[1].node_key = key_hex(1),
                |e| matches!(e, GenesisError::SharedNodeKey { member } if member == "carrier"),
            ),
            (
                "short key",
                |f| f.members[1].admin_key = "abcd".into(),
                |e| matches!(e, GenesisError::Key { member, field: "admin_key", problem: KeyProblem::NotHex } if member == "carrier"),
            ),
            (
                "small-order key",
                |f| f.members[1].node_key = identity_point(),
                |e| {
                    matches!(
                        e,
                        GenesisError::Key {
                            field: "node_key",
                            problem: KeyProblem::Unacceptable(_),
                            ..
                        }
                    )
                },
            ),
        ];
        for (name, tweak, expected) in cases {
            let mut file = two_members();
            tweak(&mut file);
            let err = Genesis::from_file(file).expect_err(name);
            assert!(expected(&err), "{name}: {err:?}");
            assert!(
                err.to_string().starts_with("invalid genesis: "),
                "{name}: {err}"
            );
        }
    }
}
